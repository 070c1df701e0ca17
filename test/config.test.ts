import { inspect } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Option, Redacted } from "effect"
import { appConfig } from "../layers/AppConfigLive.ts"
import { packageVersion } from "../layers/PackageInfo.ts"
import type { HttpServerConfig } from "../services/AppConfig.ts"
import { describeStartupFailure } from "../src/StartupError.ts"
import { freePort } from "./support/ports.ts"
import { type ProcessResult, runToExit as runProcess } from "./support/processes.ts"

/** Parses the configuration from exactly these variables, as the app does from `process.env`. */
const parse = (env: Record<string, string>) => appConfig.parse(ConfigProvider.fromEnv({ env }))

/** The one line the process would print for a configuration that fails. */
const failureLine = (env: Record<string, string>) => parse(env).pipe(Effect.flip, Effect.map(describeStartupFailure))

/**
 * The listener's limits are the same in every APP_ENV: a silent connection is closed after 20 s, a request has 30 s
 * to arrive, an idle keep-alive connection is closed after 5 s, and at most 10,000 connections are open.
 */
const assertHttpDefaults = (http: HttpServerConfig) => {
  assert.isTrue(Duration.equals(http.headersTimeout, Duration.seconds(20)))
  assert.isTrue(Duration.equals(http.requestTimeout, Duration.seconds(30)))
  assert.isTrue(Duration.equals(http.keepAliveTimeout, Duration.seconds(5)))
  assert.strictEqual(http.maxConnections, 10_000)
}

describe("appConfig defaults", () => {
  it.effect("development (APP_ENV unset): pretty logs, no shutdown delay, 25 s timeout, port 3000, PGlite dir", () =>
    Effect.gen(function* () {
      const config = yield* parse({})
      assert.strictEqual(config.appEnv, "development")
      assert.strictEqual(config.version, packageVersion)
      assert.strictEqual(config.host, "0.0.0.0")
      assert.strictEqual(config.port, 3000)
      assert.isTrue(Option.isNone(config.databaseUrl))
      assert.strictEqual(config.pgliteDir, ".data/pglite")
      assert.strictEqual(config.databasePoolMax, 10)
      assert.strictEqual(config.logLevel, "Info")
      assert.strictEqual(config.logFormat, "pretty")
      assert.isTrue(Duration.equals(config.shutdownTimeout, Duration.seconds(25)))
      assert.isTrue(Duration.isZero(config.shutdownDelay))
      assert.isTrue(Option.isNone(config.adminToken))
      assert.isTrue(Option.isNone(config.corsOrigins))
      assert.isAbove(config.bodyLimitBytes, 0)
      assertHttpDefaults(config.http)
    })
  )

  for (const appEnv of ["staging", "production"] as const) {
    it.effect(`${appEnv}: JSON logs and a 5 s shutdown delay; the rest as in development`, () =>
      Effect.gen(function* () {
        const config = yield* parse({ APP_ENV: appEnv })
        assert.strictEqual(config.appEnv, appEnv)
        assert.strictEqual(config.logFormat, "json")
        assert.isTrue(Duration.equals(config.shutdownDelay, Duration.seconds(5)))
        assert.isTrue(Duration.equals(config.shutdownTimeout, Duration.seconds(25)))
        assert.strictEqual(config.port, 3000)
        assert.strictEqual(config.pgliteDir, ".data/pglite")
        assertHttpDefaults(config.http)
      })
    )
  }

  it.effect("APP_ENV=development spelled out gives the development defaults", () =>
    Effect.gen(function* () {
      const config = yield* parse({ APP_ENV: "development" })
      assert.strictEqual(config.logFormat, "pretty")
      assert.isTrue(Duration.isZero(config.shutdownDelay))
    })
  )

  it.effect("an empty variable counts as unset", () =>
    Effect.gen(function* () {
      const config = yield* parse({
        APP_ENV: "",
        PORT: "",
        HOST: "",
        DATABASE_URL: "",
        ADMIN_TOKEN: "",
        CORS_ORIGINS: "",
        SHUTDOWN_TIMEOUT: "",
        HTTP_HEADERS_TIMEOUT: "",
        HTTP_MAX_CONNECTIONS: ""
      })
      assert.strictEqual(config.appEnv, "development")
      assert.strictEqual(config.port, 3000)
      assert.strictEqual(config.host, "0.0.0.0")
      assert.isTrue(Option.isNone(config.databaseUrl))
      assert.isTrue(Option.isNone(config.adminToken))
      assert.isTrue(Option.isNone(config.corsOrigins))
      assert.isTrue(Duration.equals(config.shutdownTimeout, Duration.seconds(25)))
      assertHttpDefaults(config.http)
    })
  )
})

describe("appConfig overrides", () => {
  it.effect("every variable can be set", () =>
    Effect.gen(function* () {
      const config = yield* parse({
        APP_ENV: "production",
        HOST: "127.0.0.1",
        PORT: "8080",
        PGLITE_DIR: "memory://",
        DATABASE_POOL_MAX: "25",
        LOG_LEVEL: "debug",
        LOG_FORMAT: "pretty",
        SHUTDOWN_TIMEOUT: "40 seconds",
        SHUTDOWN_DELAY: "500 millis",
        CORS_ORIGINS: " https://a.example ,https://b.example,, ",
        BODY_LIMIT_BYTES: "2048",
        HTTP_HEADERS_TIMEOUT: "10 seconds",
        HTTP_REQUEST_TIMEOUT: "2 minutes",
        HTTP_KEEP_ALIVE_TIMEOUT: "65 seconds",
        HTTP_MAX_CONNECTIONS: "2500"
      })
      assert.strictEqual(config.appEnv, "production")
      assert.strictEqual(config.host, "127.0.0.1")
      assert.strictEqual(config.port, 8080)
      assert.strictEqual(config.pgliteDir, "memory://")
      assert.strictEqual(config.databasePoolMax, 25)
      assert.strictEqual(config.logLevel, "Debug")
      assert.strictEqual(config.logFormat, "pretty", "an explicit LOG_FORMAT beats the per-environment default")
      assert.isTrue(Duration.equals(config.shutdownTimeout, Duration.seconds(40)))
      assert.isTrue(Duration.equals(config.shutdownDelay, Duration.millis(500)))
      assert.deepStrictEqual(config.corsOrigins, Option.some(["https://a.example", "https://b.example"]))
      assert.strictEqual(config.bodyLimitBytes, 2048)
      assert.isTrue(Duration.equals(config.http.headersTimeout, Duration.seconds(10)))
      assert.isTrue(Duration.equals(config.http.requestTimeout, Duration.minutes(2)))
      assert.isTrue(Duration.equals(config.http.keepAliveTimeout, Duration.seconds(65)), "above a 60 s load balancer")
      assert.strictEqual(config.http.maxConnections, 2500)
    })
  )

  it.effect("HTTP_HEADERS_TIMEOUT may equal HTTP_REQUEST_TIMEOUT; the keep-alive timeout is independent of both", () =>
    Effect.gen(function* () {
      const config = yield* parse({
        HTTP_HEADERS_TIMEOUT: "5 seconds",
        HTTP_REQUEST_TIMEOUT: "5 seconds",
        HTTP_KEEP_ALIVE_TIMEOUT: "1 day"
      })
      assert.isTrue(Duration.equals(config.http.headersTimeout, config.http.requestTimeout))
      assert.isTrue(Duration.equals(config.http.keepAliveTimeout, Duration.days(1)))
    })
  )

  it.effect("LOG_FORMAT=json in development; PORT=0 (any free port); a delay equal to the timeout", () =>
    Effect.gen(function* () {
      const config = yield* parse({
        LOG_FORMAT: "json",
        PORT: "0",
        SHUTDOWN_TIMEOUT: "2 seconds",
        SHUTDOWN_DELAY: "2 seconds"
      })
      assert.strictEqual(config.logFormat, "json")
      assert.strictEqual(config.port, 0)
      assert.isTrue(Duration.equals(config.shutdownDelay, config.shutdownTimeout))
    })
  )

  it.effect("LOG_LEVEL maps each lowercase name to Effect's level", () =>
    Effect.gen(function* () {
      const expected = {
        trace: "Trace",
        debug: "Debug",
        info: "Info",
        warn: "Warn",
        error: "Error",
        fatal: "Fatal",
        none: "None"
      } as const
      for (const [name, level] of Object.entries(expected)) {
        assert.strictEqual((yield* parse({ LOG_LEVEL: name })).logLevel, level)
      }
    })
  )

  it.effect("CORS_ORIGINS made only of separators means an empty allowlist, not unset", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual((yield* parse({ CORS_ORIGINS: " , " })).corsOrigins, Option.some([]))
    })
  )
})

describe("appConfig secrets", () => {
  const databaseUrl = "postgres://codex:db-password-4711@db.internal:5432/codex"
  const adminToken = "admin-token-0815-secret"

  it.effect("DATABASE_URL and ADMIN_TOKEN are Redacted and never rendered", () =>
    Effect.gen(function* () {
      const config = yield* parse({ DATABASE_URL: databaseUrl, ADMIN_TOKEN: adminToken })
      assert.isTrue(Option.isSome(config.databaseUrl))
      assert.isTrue(Option.isSome(config.adminToken))
      if (Option.isNone(config.databaseUrl) || Option.isNone(config.adminToken)) return
      assert.isTrue(Redacted.isRedacted(config.databaseUrl.value))
      assert.isTrue(Redacted.isRedacted(config.adminToken.value))
      assert.strictEqual(Redacted.value(config.databaseUrl.value), databaseUrl)
      assert.strictEqual(Redacted.value(config.adminToken.value), adminToken)

      const renderings = [
        String(config),
        `${config.databaseUrl} ${config.adminToken}`,
        String(config.databaseUrl.value),
        JSON.stringify(config),
        inspect(config, { depth: 10 })
      ]
      for (const rendered of renderings) {
        assert.notInclude(rendered, "db-password-4711")
        assert.notInclude(rendered, "db.internal")
        assert.notInclude(rendered, adminToken)
      }
    })
  )
})

describe("appConfig invalid values", () => {
  const cases: ReadonlyArray<readonly [env: Record<string, string>, line: string]> = [
    [{ PORT: "abc" }, "invalid configuration: PORT: Expected a string representing a finite number"],
    [{ PORT: "80.5" }, "invalid configuration: PORT: Expected an integer"],
    [{ PORT: "70000" }, "invalid configuration: PORT: Expected a value between 0 and 65535"],
    [{ PORT: "-1" }, "invalid configuration: PORT: Expected a value between 0 and 65535"],
    [{ APP_ENV: "prod" }, 'invalid configuration: APP_ENV: Expected "development" | "staging" | "production"'],
    [
      { LOG_LEVEL: "verbose" },
      'invalid configuration: LOG_LEVEL: Expected "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "none"'
    ],
    [{ LOG_LEVEL: "INFO" }, "invalid configuration: LOG_LEVEL: Expected "],
    [{ LOG_FORMAT: "xml" }, 'invalid configuration: LOG_FORMAT: Expected "json" | "pretty"'],
    [{ SHUTDOWN_TIMEOUT: "soon" }, "invalid configuration: SHUTDOWN_TIMEOUT: Expected a valid Duration string"],
    [{ SHUTDOWN_TIMEOUT: "10" }, "invalid configuration: SHUTDOWN_TIMEOUT: Expected a valid Duration string"],
    [
      { SHUTDOWN_TIMEOUT: "Infinity" },
      "invalid configuration: SHUTDOWN_TIMEOUT: must be a finite, non-negative duration"
    ],
    [
      { SHUTDOWN_DELAY: "-1 seconds" },
      "invalid configuration: SHUTDOWN_DELAY: must be a finite, non-negative duration"
    ],
    [
      { SHUTDOWN_DELAY: "30 seconds" },
      "invalid configuration: SHUTDOWN_DELAY: must not be longer than SHUTDOWN_TIMEOUT (30s > 25s)"
    ],
    [
      // The 5 s default delay outside development does not fit in a 3 s timeout.
      { APP_ENV: "production", SHUTDOWN_TIMEOUT: "3 seconds" },
      "invalid configuration: SHUTDOWN_DELAY: must not be longer than SHUTDOWN_TIMEOUT (5s > 3s)"
    ],
    [{ DATABASE_POOL_MAX: "0" }, "invalid configuration: DATABASE_POOL_MAX: Expected a value between 1 and 10000"],
    [{ DATABASE_POOL_MAX: "many" }, "invalid configuration: DATABASE_POOL_MAX: Expected a string representing"],
    [{ BODY_LIMIT_BYTES: "0" }, "invalid configuration: BODY_LIMIT_BYTES: Expected a value between 1 and 1073741824"],
    [{ BODY_LIMIT_BYTES: "1mb" }, "invalid configuration: BODY_LIMIT_BYTES: Expected a string representing"],
    [
      { HTTP_HEADERS_TIMEOUT: "0 seconds" },
      "invalid configuration: HTTP_HEADERS_TIMEOUT: must be a positive duration of at most 1 day"
    ],
    [
      { HTTP_REQUEST_TIMEOUT: "Infinity" },
      "invalid configuration: HTTP_REQUEST_TIMEOUT: must be a positive duration of at most 1 day"
    ],
    [
      // Past 2^31-1 ms Node's timer would fire at once.
      { HTTP_KEEP_ALIVE_TIMEOUT: "30 days" },
      "invalid configuration: HTTP_KEEP_ALIVE_TIMEOUT: must be a positive duration of at most 1 day"
    ],
    [
      { HTTP_KEEP_ALIVE_TIMEOUT: "5" },
      "invalid configuration: HTTP_KEEP_ALIVE_TIMEOUT: Expected a valid Duration string"
    ],
    [
      // Node refuses a headers timeout longer than the request timeout; the default request timeout is 30 s.
      { HTTP_HEADERS_TIMEOUT: "40 seconds" },
      "invalid configuration: HTTP_HEADERS_TIMEOUT: must not be longer than HTTP_REQUEST_TIMEOUT (40s > 30s)"
    ],
    [
      { HTTP_REQUEST_TIMEOUT: "10 seconds" },
      "invalid configuration: HTTP_HEADERS_TIMEOUT: must not be longer than HTTP_REQUEST_TIMEOUT (20s > 10s)"
    ],
    [
      { HTTP_MAX_CONNECTIONS: "0" },
      "invalid configuration: HTTP_MAX_CONNECTIONS: Expected a value between 1 and 1000000"
    ],
    [{ HTTP_MAX_CONNECTIONS: "lots" }, "invalid configuration: HTTP_MAX_CONNECTIONS: Expected a string representing"]
  ]

  for (const [env, line] of cases) {
    it.effect(`${JSON.stringify(env)} fails with one line naming the variable`, () =>
      Effect.gen(function* () {
        const described = yield* failureLine(env)
        assert.isTrue(described.startsWith(line), `${described} should start with ${line}`)
        assert.notInclude(described, "\n")
      })
    )
  }

  it.effect("a bad value is reported even when other variables are fine", () =>
    Effect.gen(function* () {
      const described = yield* failureLine({ APP_ENV: "production", PORT: "8080", LOG_LEVEL: "loud" })
      assert.match(described, /^invalid configuration: LOG_LEVEL: /)
    })
  )
})

// ---------------------------------------------------------------------------------------------------------------
// The real processes: what an operator sees when the configuration or the database is wrong.

/** Variables the app reads: removed from the inherited environment so the developer's own settings do not leak in. */
const configVariables = [
  "APP_ENV",
  "HOST",
  "PORT",
  "DATABASE_URL",
  "PGLITE_DIR",
  "DATABASE_POOL_MAX",
  "LOG_LEVEL",
  "LOG_FORMAT",
  "SHUTDOWN_TIMEOUT",
  "SHUTDOWN_DELAY",
  "ADMIN_TOKEN",
  "CORS_ORIGINS",
  "BODY_LIMIT_BYTES",
  "HTTP_HEADERS_TIMEOUT",
  "HTTP_REQUEST_TIMEOUT",
  "HTTP_KEEP_ALIVE_TIMEOUT",
  "HTTP_MAX_CONNECTIONS"
]

/**
 * A harmless base: should a "bad" setting be accepted after all, the app starts on loopback, an ephemeral port and
 * an in-memory database, and the deadline below kills it.
 */
const childEnv = (overrides: Record<string, string>): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env }
  for (const name of configVariables) delete env[name]
  return { ...env, HOST: "127.0.0.1", PORT: "0", PGLITE_DIR: "memory://", ...overrides }
}

/**
 * A failing startup exits in ~0.6 s on an idle machine, but a Node process spends that long just loading the code,
 * and on a loaded 2-core CI box (the rest of the suite, PGlite booting) that stretched to 8 s. The deadline is there
 * to catch a process that does not exit by itself; the tests run one at a time so they do not add to the load.
 */
const exitDeadlineMs = 20_000

const runToExit = (script: string, overrides: Record<string, string>): Promise<ProcessResult> =>
  runProcess(script, childEnv(overrides), exitDeadlineMs)

const stackLine = /^\s+at /m

/** Exit code 1 before the deadline, exactly one line on stderr, and no stack trace anywhere. */
const assertOneLineFailure = (result: ProcessResult, expected: RegExp): string => {
  const report = `exit ${result.code} after ${result.elapsedMs} ms\n--- stderr\n${result.stderr}--- stdout\n${result.stdout}`
  assert.strictEqual(result.code, 1, report)
  assert.isTrue(result.stderr.endsWith("\n"), report)
  const lines = result.stderr.slice(0, -1).split("\n")
  assert.strictEqual(lines.length, 1, report)
  const [line = ""] = lines
  assert.match(line, expected, report)
  assert.notMatch(result.stderr, stackLine, report)
  assert.notMatch(result.stdout, stackLine, report)
  return line
}

/** A port on 127.0.0.1 that nothing listens on. */
const closedPort = freePort

describe("src/main.ts with a bad configuration exits 1 with one line", () => {
  const cases: ReadonlyArray<readonly [env: Record<string, string>, line: RegExp]> = [
    [{ PORT: "abc" }, /^invalid configuration: PORT: Expected a string representing a finite number$/],
    [{ APP_ENV: "prod" }, /^invalid configuration: APP_ENV: Expected "development" \| "staging" \| "production"$/],
    [{ SHUTDOWN_TIMEOUT: "soon" }, /^invalid configuration: SHUTDOWN_TIMEOUT: Expected a valid Duration string$/],
    [{ LOG_LEVEL: "verbose" }, /^invalid configuration: LOG_LEVEL: Expected "trace" \| "debug" \| .*"none"$/],
    [{ DATABASE_POOL_MAX: "0" }, /^invalid configuration: DATABASE_POOL_MAX: Expected a value between 1 and 10000$/],
    [
      { SHUTDOWN_DELAY: "-5 seconds" },
      /^invalid configuration: SHUTDOWN_DELAY: must be a finite, non-negative duration$/
    ],
    [
      { APP_ENV: "production", SHUTDOWN_TIMEOUT: "3 seconds" },
      /^invalid configuration: SHUTDOWN_DELAY: must not be longer than SHUTDOWN_TIMEOUT/
    ],
    [
      { HTTP_HEADERS_TIMEOUT: "1 minute" },
      /^invalid configuration: HTTP_HEADERS_TIMEOUT: must not be longer than HTTP_REQUEST_TIMEOUT \(1m > 30s\)$/
    ]
  ]

  for (const [env, expected] of cases) {
    it(`${JSON.stringify(env)}`, async () => {
      const result = await runToExit("src/main.ts", env)
      assertOneLineFailure(result, expected)
      assert.strictEqual(result.stdout, "", "nothing starts, so nothing is logged")
    })
  }

  it("npm run migrate (src/migrate.ts) reports a bad configuration the same way", async () => {
    const result = await runToExit("src/migrate.ts", { PORT: "abc" })
    assertOneLineFailure(result, /^invalid configuration: PORT: Expected a string representing a finite number$/)
  })
})

describe("a DATABASE_URL nobody answers on", () => {
  for (const script of ["src/main.ts", "src/migrate.ts"]) {
    for (const appEnv of ["development", "production"]) {
      it(`${script} (${appEnv}) exits 1 with one line naming the refused connection, without the password`, async () => {
        const port = await closedPort()
        const result = await runToExit(script, {
          APP_ENV: appEnv,
          DATABASE_URL: `postgres://codex:pw-do-not-print@127.0.0.1:${port}/codex`
        })
        const line = assertOneLineFailure(result, /^startup failed: /)
        assert.include(line, `ECONNREFUSED 127.0.0.1:${port}`)
        assert.notInclude(result.stderr + result.stdout, "pw-do-not-print")
      })
    }
  }
})
