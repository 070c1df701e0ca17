import { createServer } from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { testEncryptionKeysEnv } from "./support/appConfig.ts"
import { freePort } from "./support/ports.ts"
import { type ProcessResult, runToExit } from "./support/processes.ts"

/**
 * README: with `REDIS_URL` set the circuits (and, with `RATE_LIMIT_STORE=redis`, the rate-limit counters) connect to
 * Redis at startup, and "an unreachable Redis stops the process with one line, like the database": exit 1, one line
 * on stderr naming the refused connection, no stack trace anywhere, never the URL's password. The real processes
 * (`npm start`'s src/main.ts and `npm run worker`'s src/worker.ts) against a port nobody listens on.
 */

/** Variables that would change what starts: the developer's own settings must not leak in. */
const inherited = [
  "APP_ENV",
  "DATABASE_URL",
  "PGLITE_DIR",
  "LOG_FORMAT",
  "LOG_LEVEL",
  "REDIS_URL",
  "RATE_LIMIT_STORE",
  "RATE_LIMIT_ENABLED",
  "DELIVERY_WORKER",
  "METRICS_PORT",
  "ENCRYPTION_KEYS",
  "ADMIN_TOKEN"
]

const childEnv = (overrides: Record<string, string>): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env }
  for (const name of inherited) delete env[name]
  // Should the process start after all, it does so on loopback, an ephemeral port and an in-memory database, and the
  // deadline below kills it.
  return { ...env, HOST: "127.0.0.1", PORT: "0", PGLITE_DIR: "memory://", ...overrides }
}

/**
 * Long enough for a loaded 2-core machine to load the code and boot PGlite (a taken METRICS_PORT is found after the
 * database is up: 10-12 s alone, past 30 s during the whole suite); only a process that hangs reaches it.
 */
const exitDeadlineMs = 90_000

const password = "redis-pw-do-not-print"

const stackLine = /^\s+at /m

/** Exit code 1 before the deadline, exactly one line on stderr, and no stack trace anywhere; returns the line. */
const oneLineFailure = (result: ProcessResult): string => {
  const report = `exit ${result.code} after ${result.elapsedMs} ms\n--- stderr\n${result.stderr}--- stdout\n${result.stdout}`
  assert.strictEqual(result.code, 1, report)
  assert.isTrue(result.stderr.endsWith("\n"), report)
  const lines = result.stderr.slice(0, -1).split("\n")
  assert.strictEqual(lines.length, 1, report)
  assert.notMatch(result.stderr, stackLine, report)
  assert.notMatch(result.stdout, stackLine, report)
  assert.notInclude(result.stderr + result.stdout, password, report)
  return lines[0] ?? ""
}

describe("a REDIS_URL nobody answers on stops startup with one line", () => {
  const cases: ReadonlyArray<readonly [script: string, what: string, env: Record<string, string>]> = [
    ["src/main.ts", "circuits (development, pretty logs)", { APP_ENV: "development" }],
    [
      "src/main.ts",
      "circuits (production, JSON logs)",
      { APP_ENV: "production", ENCRYPTION_KEYS: testEncryptionKeysEnv }
    ],
    ["src/main.ts", "circuits and RATE_LIMIT_STORE=redis", { APP_ENV: "development", RATE_LIMIT_STORE: "redis" }],
    ["src/worker.ts", "the worker's circuits", { APP_ENV: "development" }]
  ]

  for (const [script, what, env] of cases) {
    it(`${script}: ${what}`, { timeout: exitDeadlineMs + 10_000 }, async () => {
      const port = await freePort()
      const result = await runToExit(
        script,
        childEnv({ ...env, REDIS_URL: `redis://:${password}@127.0.0.1:${port}` }),
        exitDeadlineMs
      )
      const line = oneLineFailure(result)
      assert.strictEqual(line, `startup failed: RedisError <- connect ECONNREFUSED 127.0.0.1:${port}`)
      assert.notInclude(result.stdout, '"listening"', "it never served")
    })
  }
})

describe("a METRICS_PORT already taken stops startup with one line", () => {
  for (const script of ["src/main.ts", "src/worker.ts"]) {
    it(script, { timeout: exitDeadlineMs + 10_000 }, async () => {
      const taken = createServer()
      await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve))
      const address = taken.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      try {
        const result = await runToExit(
          script,
          childEnv({ APP_ENV: "development", METRICS_PORT: String(port) }),
          exitDeadlineMs
        )
        const line = oneLineFailure(result)
        assert.strictEqual(
          line,
          `startup failed: MetricsListenFailed: METRICS_PORT ${port}: listen EADDRINUSE: address already in use 127.0.0.1:${port}`
        )
      } finally {
        await new Promise((resolve) => taken.close(resolve))
      }
    })
  }
})
