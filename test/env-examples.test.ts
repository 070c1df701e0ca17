import { readFileSync } from "node:fs"
import { join } from "node:path"
import { Duration, Option } from "effect"
import { describe, expect, it } from "vitest"
import { packageRoot } from "../src/domain/PackageInfo.ts"
import { testEncryptionKeysEnv } from "./support/appConfig.ts"
import { parseRecording } from "./support/defaultConfig.ts"

/**
 * infra/app/environments/*.env.example must list exactly the variables the service reads, and every file must pass the
 * real config. The set of variables is taken from the code, not from a list kept here: `appConfig` is parsed through a
 * provider that records every key it asks for, under each APP_ENV (defaults that depend on APP_ENV could read other
 * keys). So a variable added to layers/AppConfigLive.ts fails this test until the examples (and the README table)
 * document it.
 */

const environmentsDir = join(packageRoot, "infra", "app", "environments")
const examples = [
  { file: "dev.env.example", appEnv: "development" },
  { file: "staging.env.example", appEnv: "staging" },
  { file: "prod.env.example", appEnv: "production" }
] as const

/** `KEY=value` lines, literally (the `docker --env-file` / `kubectl --from-env-file` rules): no quotes, no export. */
const parseEnvFile = (text: string): { env: Record<string, string>; comments: Map<string, string> } => {
  const env: Record<string, string> = {}
  const comments = new Map<string, string>()
  let pending: Array<string> = []
  for (const [index, line] of text.split("\n").entries()) {
    const trimmed = line.trim()
    if (trimmed === "") {
      pending = []
      continue
    }
    if (trimmed.startsWith("#")) {
      pending.push(trimmed.slice(1).trim())
      continue
    }
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line)
    if (match === null || match[1] === undefined || match[2] === undefined) {
      throw new Error(`line ${index + 1} is not KEY=value: ${line}`)
    }
    const [, key, value] = match
    if (key in env) throw new Error(`${key} is set twice`)
    if (/^["'`]/.test(value)) throw new Error(`${key}: quotes are kept literally by --env-file; write the bare value`)
    env[key] = value
    comments.set(key, pending.join(" "))
    pending = []
  }
  return { env, comments }
}

/** What must be set outside development (startup stops without it): valid values, so the rest can be recorded. */
const requiredOutsideDevelopment: Record<string, string> = { ENCRYPTION_KEYS: testEncryptionKeysEnv }

/**
 * The secrets an operator must replace: their example values are placeholders (`CHANGE_ME...`) that startup refuses
 * outside development, so an example copied unedited does not run with a public token or key. The test puts real
 * values in their place to check the rest of the file.
 */
const replacedSecrets: Record<string, string> = {
  ADMIN_TOKEN: "a-random-admin-token-of-at-least-32-characters",
  ENCRYPTION_KEYS: testEncryptionKeysEnv
}

/** Every variable the code reads, whatever APP_ENV is. */
const variablesReadByCode = (): Set<string> => {
  const all = new Set<string>()
  for (const appEnv of ["development", "staging", "production"]) {
    const { result, read } = parseRecording({
      APP_ENV: appEnv,
      ...(appEnv === "development" ? {} : requiredOutsideDevelopment)
    })
    expect(result._tag, `defaults must parse with APP_ENV=${appEnv}`).toBe("Success")
    for (const name of read) all.add(name)
  }
  return all
}

/** The variables of the README's configuration table (first column). */
const variablesInReadme = (): Set<string> => {
  const readme = readFileSync(join(packageRoot, "README.md"), "utf8")
  const section = readme.split(/^## Configuration$/m)[1]?.split(/^## /m)[0] ?? ""
  return new Set([...section.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \|/gm)].map((m) => m[1] ?? ""))
}

describe("infra/app/environments/*.env.example", () => {
  const codeVariables = variablesReadByCode()

  it("the recording provider sees the variables the code reads", () => {
    // A sanity floor, so a broken recorder (an empty set) cannot make every file "match".
    for (const name of ["APP_ENV", "PORT", "DATABASE_URL", "SHUTDOWN_TIMEOUT"]) expect(codeVariables).toContain(name)
  })

  it("the README configuration table documents the same variables", () => {
    expect([...variablesInReadme()].sort()).toEqual([...codeVariables].sort())
  })

  for (const { file, appEnv } of examples) {
    describe(file, () => {
      const { env, comments } = parseEnvFile(readFileSync(join(environmentsDir, file), "utf8"))

      it("lists exactly the variables the config reads, each with a comment", () => {
        expect(Object.keys(env).sort()).toEqual([...codeVariables].sort())
        for (const [name, comment] of comments) expect(comment.length, `${name} needs a comment`).toBeGreaterThan(10)
      })

      if (appEnv !== "development") {
        it("does not start as it is: its secrets are placeholders that startup refuses", () => {
          for (const name of Object.keys(replacedSecrets)) {
            expect(env[name], name).toContain("CHANGE_ME")
            const { result } = parseRecording({ ...env, ...replacedSecrets, [name]: env[name] ?? "" })
            expect(result._tag, `${name} as in the example`).toBe("Failure")
            if (result._tag === "Failure") expect(String(result.failure)).toContain(name)
          }
        })
      }

      it("parses through the real config (placeholders replaced), reading exactly the file's variables", () => {
        const { result, read } = parseRecording(appEnv === "development" ? env : { ...env, ...replacedSecrets })
        if (result._tag === "Failure") throw new Error(`${file} does not parse: ${String(result.failure)}`)
        const config = result.success
        expect(config.appEnv).toBe(appEnv)
        expect([...read].sort()).toEqual(Object.keys(env).sort())
        expect(Duration.isLessThan(config.shutdownTimeout, Duration.seconds(40))).toBe(true)
        if (appEnv !== "development") {
          // Production-like environments run on PostgreSQL with JSON logs and a drain delay for the load balancer.
          expect(Option.isSome(config.databaseUrl)).toBe(true)
          expect(config.logFormat).toBe("json")
          expect(Duration.toMillis(config.shutdownDelay)).toBeGreaterThan(0)
          expect(Option.isSome(config.adminToken)).toBe(true)
          expect(config.encryption.developmentDefault).toBe(false)
        }
      })
    })
  }
})
