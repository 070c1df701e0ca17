import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { Option } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { packageRoot } from "../src/domain/PackageInfo.ts"

/** The README's curl walkthrough, exactly as written (only the port differs), so it cannot rot. */
const walkthrough = (): string => {
  const readme = readFileSync(join(packageRoot, "README.md"), "utf8")
  const start = readme.indexOf("# 1. Create a tenant")
  const end = readme.indexOf("```", start)
  expect(start).toBeGreaterThan(0)
  return readme.slice(start, end)
}

describe("README walkthrough", { tags: ["curl"] }, () => {
  let child: ReturnType<typeof spawn> | undefined
  let port = 0

  beforeAll(async () => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      APP_ENV: "development",
      PORT: "0",
      HOST: "127.0.0.1",
      LOG_FORMAT: "json",
      ADMIN_TOKEN: "",
      PGLITE_DIR: "memory://",
      // As on a newcomer's machine: the embedded database (the same code runs on PostgreSQL in the other tests).
      DATABASE_URL: ""
    }
    child = spawn(process.execPath, ["src/main.ts"], { cwd: packageRoot, env, stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line:\n${output}`)), 60_000)
      child?.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
        output += chunk
        const line = output.split("\n").find((l) => l.includes('"message":"listening"'))
        const found = Option.fromNullishOr(line).pipe(Option.map((l) => (JSON.parse(l) as { port: number }).port))
        if (Option.isSome(found)) {
          clearTimeout(timer)
          resolve(found.value)
        }
      })
    })
  }, 90_000)

  afterAll(() => {
    child?.kill("SIGTERM")
  })

  it("creates a tenant, an endpoint, publishes an event and lists it", async () => {
    const script = walkthrough().replaceAll("localhost:3000", `127.0.0.1:${port}`)
    const run = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const bash = spawn("bash", ["-euo", "pipefail", "-c", script], { stdio: ["ignore", "pipe", "inherit"] })
      let stdout = ""
      bash.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        stdout += chunk
      })
      bash.once("close", (code) => resolve({ code, stdout }))
    })
    expect(run.code).toBe(0)
    expect(run.stdout).toContain('"url":"http://localhost:4000/webhooks"')
    expect(run.stdout).toContain('"deliveriesQueued":1')
    expect(run.stdout).toMatch(/\{"data":\[\{"id":"evt_[0-9A-Z]{26}","type":"order.created"/)
  }, 60_000)
})
