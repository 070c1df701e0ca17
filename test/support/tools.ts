import { accessSync, constants, statSync } from "node:fs"
import { connect } from "node:net"
import { delimiter, join } from "node:path"
import type { TestTagDefinition } from "vitest/config"

/**
 * External programs and services some tests need besides Node, as vitest tags: a test (`{ tags: ["promtool"] }`),
 * a `describe` (same option) or a whole file (a `// @module-tag chromium` comment) names what it needs. The configs
 * probe each tool once per run (`toolTags`). Outside CI a missing one skips the tests tagged with it (`npm test`
 * passes on a machine with nothing but Node), a line names the tool and how to install it, and the run ends with
 * the list of skipped tests and why (test/support/summaryReporter.ts); in CI (`CI` set) they run anyway and fail,
 * so a CI machine missing a tool can never go green by skipping.
 */
export type Tool = "redis" | "redis-server" | "promtool" | "prometheus" | "chromium" | "curl"

declare module "vitest" {
  interface TestTags {
    tool: Tool
  }
}

const needs: Record<Tool, { readonly what: string; readonly install: string }> = {
  redis: { what: "a Redis answering on 127.0.0.1:6379", install: "apt-get install redis-server" },
  "redis-server": { what: "redis-server on PATH", install: "apt-get install redis-server" },
  promtool: { what: "promtool on PATH", install: "apt-get install prometheus" },
  prometheus: { what: "prometheus on PATH", install: "apt-get install prometheus" },
  chromium: { what: "Chromium (CHROMIUM_PATH, or chromium on PATH)", install: "apt-get install chromium" },
  curl: { what: "curl on PATH", install: "apt-get install curl" }
}

const executable = (file: string): boolean => {
  try {
    accessSync(file, constants.X_OK)
    return statSync(file).isFile()
  } catch {
    return false
  }
}

/** The first `name` on PATH, as a shell would run it. */
const onPath = (name: string): string | undefined =>
  (process.env.PATH ?? "")
    .split(delimiter)
    .filter((dir) => dir !== "")
    .map((dir) => join(dir, name))
    .find(executable)

/** The Chromium the browser test launches: `CHROMIUM_PATH`, else `chromium` on PATH (Debian's package). */
export const chromiumPath = (): string => process.env.CHROMIUM_PATH ?? onPath("chromium") ?? "/usr/bin/chromium"

/** Whether a Redis answers PING on 127.0.0.1:6379 within a second. */
const redisAnswers = (): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port: 6379 })
    const done = (answer: boolean) => {
      socket.destroy()
      resolve(answer)
    }
    socket.setTimeout(1000, () => done(false))
    socket.once("error", () => done(false))
    socket.once("connect", () => socket.write("PING\r\n"))
    socket.once("data", (data) => done(data.toString().startsWith("+PONG")))
  })

const available = async (tool: Tool): Promise<boolean> => {
  switch (tool) {
    case "redis":
      return redisAnswers()
    case "chromium":
      // Not chromiumPath(): its last-resort default is for the error message in CI, not a sign Chromium is there.
      return process.env.CHROMIUM_PATH === undefined
        ? onPath("chromium") !== undefined
        : executable(process.env.CHROMIUM_PATH)
    default:
      return onPath(tool) !== undefined
  }
}

/** CI runs every test: `CI` set to anything but empty, `0` or `false` (GitHub Actions and .ci/run set `true`). */
export const inCi = (): boolean => {
  const ci = process.env.CI
  return ci !== undefined && ci !== "" && ci !== "0" && ci.toLowerCase() !== "false"
}

/**
 * One tag per tool, for the configs' `test.tags`: `skip` when the tool is missing outside CI, and a description
 * that names the tool and how to install it (the reporter prints it beside each test it skipped). Prints a line per
 * missing tool.
 */
export const toolTags = async (): Promise<Array<TestTagDefinition>> =>
  Promise.all(
    (Object.keys(needs) as Array<Tool>).map(async (tool) => {
      const { what, install } = needs[tool]
      const missing = !(await available(tool))
      if (missing) {
        process.stdout.write(
          inCi()
            ? `[tests] missing ${what}: CI is set, so the tests that need it run and fail (${install})\n`
            : `[tests] missing ${what}: the tests that need it skip (${install})\n`
        )
      }
      return { name: tool, description: `needs ${what} (${install})`, skip: missing && !inCi() }
    })
  )
