import { inspect } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Option, Redacted } from "effect"
import { appConfig } from "../layers/AppConfigLive.ts"
import type { HttpServerConfig } from "../services/AppConfig.ts"
import { developmentKeyBase64, developmentKeyId } from "../src/domain/EncryptionKeys.ts"
import { packageVersion } from "../src/domain/PackageInfo.ts"
import { describeStartupFailure } from "../src/StartupError.ts"
import { testEncryptionKeysEnv } from "./support/appConfig.ts"
import { freePort } from "./support/ports.ts"
import { type ProcessResult, runToExit as runProcess } from "./support/processes.ts"

/** Parses the configuration from exactly these variables, as the app does from `process.env`. */
const parse = (env: Record<string, string>) => appConfig.parse(ConfigProvider.fromEnv({ env }))

/** A valid `ENCRYPTION_KEYS`, required outside development. */
const keys = { ENCRYPTION_KEYS: testEncryptionKeysEnv }

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
      assert.strictEqual(config.bodyLimitBytes, 262_144, "256 KiB (README)")
      assert.deepStrictEqual(config.webhookAllowedPorts, [
        { from: 80, to: 80 },
        { from: 443, to: 443 },
        { from: 1024, to: 65535 }
      ])
      assertHttpDefaults(config.http)
      // Generous, for exploring the API; the product's quota is the default everywhere else.
      assert.strictEqual(config.rateLimit.max, 10_000)
      assert.isTrue(Duration.equals(config.rateLimit.window, Duration.minutes(15)))
    })
  )

  for (const appEnv of ["staging", "production"] as const) {
    it.effect(`${appEnv}: JSON logs and a 5 s shutdown delay; the rest as in development`, () =>
      Effect.gen(function* () {
        const config = yield* parse({ APP_ENV: appEnv, ...keys })
        assert.strictEqual(config.appEnv, appEnv)
        assert.strictEqual(config.logFormat, "json")
        assert.isTrue(Duration.equals(config.shutdownDelay, Duration.seconds(5)))
        assert.isTrue(Duration.equals(config.shutdownTimeout, Duration.seconds(25)))
        assert.strictEqual(config.port, 3000)
        assert.strictEqual(config.pgliteDir, ".data/pglite")
        // README: 80,443,1024-65535.
        assert.deepStrictEqual(config.webhookAllowedPorts, [
          { from: 80, to: 80 },
          { from: 443, to: 443 },
          { from: 1024, to: 65535 }
        ])
        assertHttpDefaults(config.http)
        // The product's quota: 100 requests per 15 minutes.
        assert.isTrue(config.rateLimit.enabled)
        assert.strictEqual(config.rateLimit.max, 100)
        assert.isTrue(Duration.equals(config.rateLimit.window, Duration.minutes(15)))
      })
    )
  }

  it.effect("RATE_LIMIT_MAX set in development wins over the development default", () =>
    Effect.gen(function* () {
      assert.strictEqual((yield* parse({ RATE_LIMIT_MAX: "100" })).rateLimit.max, 100)
      assert.strictEqual((yield* parse({ APP_ENV: "production", ...keys, RATE_LIMIT_MAX: "500" })).rateLimit.max, 500)
    })
  )

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
        ...keys,
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
        WEBHOOK_ALLOWED_PORTS: " 443 , 8000-8999,9443-9443 ",
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
      assert.deepStrictEqual(config.webhookAllowedPorts, [
        { from: 443, to: 443 },
        { from: 8000, to: 8999 },
        { from: 9443, to: 9443 }
      ])
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

describe("DELIVERY_TENANT_CONCURRENCY", () => {
  it.effect("unset: half of DELIVERY_CONCURRENCY, rounded up, whatever that is set to", () =>
    Effect.gen(function* () {
      const halves: ReadonlyArray<readonly [concurrency: string | undefined, tenant: number]> = [
        [undefined, 16],
        ["64", 32],
        ["5", 3],
        ["1", 1]
      ]
      for (const [concurrency, tenant] of halves) {
        const config = yield* parse(concurrency === undefined ? {} : { DELIVERY_CONCURRENCY: concurrency })
        assert.strictEqual(config.delivery.tenantConcurrency, tenant, `DELIVERY_CONCURRENCY=${concurrency}`)
      }
    })
  )

  it.effect("set: taken as is, even above DELIVERY_CONCURRENCY (then no tenant is held back)", () =>
    Effect.gen(function* () {
      const config = yield* parse({ DELIVERY_CONCURRENCY: "8", DELIVERY_TENANT_CONCURRENCY: "12" })
      assert.deepStrictEqual([config.delivery.concurrency, config.delivery.tenantConcurrency], [8, 12])
    })
  )
})

describe("ADMIN_TOKEN strength", () => {
  const short = "x".repeat(31)
  const long = "x".repeat(32)
  for (const appEnv of ["staging", "production"] as const) {
    it.effect(`${appEnv}: a token under 32 characters stops startup with one line naming ADMIN_TOKEN`, () =>
      Effect.gen(function* () {
        const line = yield* failureLine({ APP_ENV: appEnv, ...keys, ADMIN_TOKEN: short })
        assert.strictEqual(
          line,
          "invalid configuration: ADMIN_TOKEN: must be at least 32 characters outside development"
        )
        assert.notInclude(line, short)
        const config = yield* parse({ APP_ENV: appEnv, ...keys, ADMIN_TOKEN: long })
        assert.isTrue(Option.isSome(config.adminToken))
      })
    )
  }

  it.effect("outside development the examples' placeholders are refused: CHANGE_ME tokens, one-byte keys", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* failureLine({
          APP_ENV: "production",
          ...keys,
          ADMIN_TOKEN: "CHANGE_ME-to-a-random-token-of-32-characters"
        }),
        "invalid configuration: ADMIN_TOKEN: is still the example's placeholder: set a random token (openssl rand -base64 32)"
      )
      const zero = Buffer.alloc(32).toString("base64")
      const sevens = Buffer.alloc(32, 7).toString("base64")
      for (const value of [`CHANGE_ME:${zero}`, `k1:${sevens}`, `${keys.ENCRYPTION_KEYS},old:${zero}`]) {
        const line = yield* failureLine({ APP_ENV: "staging", ENCRYPTION_KEYS: value })
        assert.match(line, /^invalid configuration: ENCRYPTION_KEYS: holds a placeholder \(one byte repeated\)/)
        assert.notInclude(line, zero)
      }
      // Development takes them (a developer's own throwaway values).
      assert.isTrue(Option.isSome((yield* parse({ ADMIN_TOKEN: "CHANGE_ME" })).adminToken))
    })
  )

  it.effect("IDEMPOTENCY_TTL: 5 minutes by default, up to 24 hours (Svix's retention), no more", () =>
    Effect.gen(function* () {
      assert.strictEqual(Duration.toMinutes((yield* parse({})).idempotency.ttl), 5)
      assert.strictEqual(Duration.toHours((yield* parse({ IDEMPOTENCY_TTL: "24h" })).idempotency.ttl), 24)
      assert.strictEqual(
        yield* failureLine({ IDEMPOTENCY_TTL: "24h1s" }),
        "invalid configuration: IDEMPOTENCY_TTL: must be a positive duration of at most 24 hours"
      )
    })
  )

  it.effect("PORTAL_SESSION_TTL: 1 hour by default, from 1 second to 24 hours", () =>
    Effect.gen(function* () {
      assert.strictEqual(Duration.toHours((yield* parse({})).portal.sessionTtl), 1)
      assert.strictEqual(Duration.toMinutes((yield* parse({ PORTAL_SESSION_TTL: "15m" })).portal.sessionTtl), 15)
      assert.strictEqual(Duration.toHours((yield* parse({ PORTAL_SESSION_TTL: "24 hours" })).portal.sessionTtl), 24)
      for (const value of ["24h1s", "500ms", "0s"]) {
        assert.strictEqual(
          yield* failureLine({ PORTAL_SESSION_TTL: value }),
          "invalid configuration: PORTAL_SESSION_TTL: must be a duration from 1 second to 24 hours",
          value
        )
      }
    })
  )

  it.effect("PORTAL_FRAME_ANCESTORS: 'none' by default; 'self' and origins, by commas or spaces; nothing looser", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual((yield* parse({})).portal.frameAncestors, ["'none'"])
      assert.deepStrictEqual(
        (yield* parse({ PORTAL_FRAME_ANCESTORS: "'self', https://App.example.com https://*.example.org:8443" })).portal
          .frameAncestors,
        ["'self'", "https://app.example.com", "https://*.example.org:8443"]
      )
      for (const value of ["https:", "*", "https://example.com/path", "https://a.com; script-src *", "'none' 'self'"]) {
        const line = yield* failureLine({ PORTAL_FRAME_ANCESTORS: value })
        assert.match(line, /^invalid configuration: PORTAL_FRAME_ANCESTORS: /, value)
      }
    })
  )

  it.effect(
    "PUBLIC_URL: unset by default; an http(s) origin, trailing slash dropped; never a path or credentials",
    () =>
      Effect.gen(function* () {
        assert.isTrue(Option.isNone((yield* parse({})).publicUrl))
        assert.deepStrictEqual(
          (yield* parse({ PUBLIC_URL: "https://Codex.Example.com/" })).publicUrl,
          Option.some("https://codex.example.com")
        )
        assert.deepStrictEqual(
          (yield* parse({ PUBLIC_URL: "http://localhost:3000" })).publicUrl,
          Option.some("http://localhost:3000")
        )
        for (const value of [
          "codex.example.com",
          "ftp://codex.example.com",
          "https://codex.example.com/api",
          "https://u:p@h",
          "https://h/?x"
        ]) {
          const line = yield* failureLine({ PUBLIC_URL: value })
          assert.match(line, /^invalid configuration: PUBLIC_URL: /, value)
        }
      })
  )

  it.effect("development accepts any token (the README walkthrough)", () =>
    Effect.gen(function* () {
      const config = yield* parse({ ADMIN_TOKEN: "dev" })
      assert.isTrue(Option.isSome(config.adminToken))
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
    [
      { SHUTDOWN_TIMEOUT: "soon" },
      'invalid configuration: SHUTDOWN_TIMEOUT: expected a duration such as 30s, 500ms, 5m, 1h30m or 30 seconds (not "soon")'
    ],
    // A bare number has no unit: seconds or milliseconds would both be a guess.
    [
      { SHUTDOWN_TIMEOUT: "10" },
      'invalid configuration: SHUTDOWN_TIMEOUT: expected a duration such as 30s, 500ms, 5m, 1h30m or 30 seconds (not "10")'
    ],
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
      { APP_ENV: "production", ...keys, SHUTDOWN_TIMEOUT: "3 seconds" },
      "invalid configuration: SHUTDOWN_DELAY: must not be longer than SHUTDOWN_TIMEOUT (5s > 3s)"
    ],
    [{ DATABASE_POOL_MAX: "0" }, "invalid configuration: DATABASE_POOL_MAX: Expected a value between 1 and 10000"],
    [{ DATABASE_POOL_MAX: "many" }, "invalid configuration: DATABASE_POOL_MAX: Expected a string representing"],
    [{ BODY_LIMIT_BYTES: "0" }, "invalid configuration: BODY_LIMIT_BYTES: Expected a value between 1 and 1073741824"],
    [{ BODY_LIMIT_BYTES: "1mb" }, "invalid configuration: BODY_LIMIT_BYTES: Expected a string representing"],
    ...["22-", "-", "abc", "0", "65536", "443,,80", "443;80", "2000-1000", "1-2-3", "0x50", "+80", " "].map(
      (value) =>
        [
          { WEBHOOK_ALLOWED_PORTS: value },
          `invalid configuration: WEBHOOK_ALLOWED_PORTS: expected a comma-separated list of ports (1-65535) and ranges like 1024-65535 (not one: "`
        ] as const
    ),
    [{ RETENTION: "0 seconds" }, "invalid configuration: RETENTION: must be a finite, positive duration"],
    [{ RETENTION: "3651 days" }, "invalid configuration: RETENTION: must be at most 3650 days"],
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
      'invalid configuration: HTTP_KEEP_ALIVE_TIMEOUT: expected a duration such as 30s, 500ms, 5m, 1h30m or 30 seconds (not "5")'
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
    [{ HTTP_MAX_CONNECTIONS: "lots" }, "invalid configuration: HTTP_MAX_CONNECTIONS: Expected a string representing"],
    [
      // Svix keeps keys 24 h: longer only grows the table with answers nobody retries for.
      { IDEMPOTENCY_TTL: "25h" },
      "invalid configuration: IDEMPOTENCY_TTL: must be a positive duration of at most 24 hours"
    ],
    [
      { IDEMPOTENCY_TTL: "0s" },
      "invalid configuration: IDEMPOTENCY_TTL: must be a positive duration of at most 24 hours"
    ],
    [
      { DELIVERY_TENANT_CONCURRENCY: "0" },
      "invalid configuration: DELIVERY_TENANT_CONCURRENCY: Expected a value between 1 and 1024"
    ],
    [
      { DELIVERY_TENANT_CONCURRENCY: "1025" },
      "invalid configuration: DELIVERY_TENANT_CONCURRENCY: Expected a value between 1 and 1024"
    ]
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
      const described = yield* failureLine({ APP_ENV: "production", ...keys, PORT: "8080", LOG_LEVEL: "loud" })
      assert.match(described, /^invalid configuration: LOG_LEVEL: /)
    })
  )
})

describe("ENCRYPTION_KEYS", () => {
  const keyA = "CxVIGq9xNo4r7klRnZxH9MYQxJXj5vrlT8SIBw3TIcc="
  const keyB = "boCIN44VdzSh+pIlVNGFWwO1dPkNqc8/aKPFkkXaSY4="
  const ids = (config: { readonly encryption: { readonly keys: Redacted.Redacted<ReadonlyArray<{ id: string }>> } }) =>
    Redacted.value(config.encryption.keys).map((key) => key.id)

  it.effect("unset in development: the public development key, flagged for the startup warning", () =>
    Effect.gen(function* () {
      const config = yield* parse({})
      assert.isTrue(config.encryption.developmentDefault)
      assert.deepStrictEqual(ids(config), [developmentKeyId])
      assert.deepStrictEqual(
        Buffer.from(Redacted.value(config.encryption.keys)[0].material).toString("base64"),
        developmentKeyBase64
      )
    })
  )

  it.effect("a list of id:base64 keys, the first sealing; Redacted and never rendered", () =>
    Effect.gen(function* () {
      const config = yield* parse({ APP_ENV: "production", ENCRYPTION_KEYS: ` k-2026_b:${keyB} , k1:${keyA},` })
      assert.isFalse(config.encryption.developmentDefault)
      assert.deepStrictEqual(ids(config), ["k-2026_b", "k1"])
      const [first, second] = Redacted.value(config.encryption.keys)
      assert.strictEqual(Buffer.from(first.material).toString("base64"), keyB)
      assert.strictEqual(Buffer.from(second?.material ?? new Uint8Array()).toString("base64"), keyA)
      assert.isTrue(Redacted.isRedacted(config.encryption.keys))
      for (const rendered of [String(config), JSON.stringify(config), inspect(config, { depth: 10 })]) {
        assert.notInclude(rendered, keyA)
        assert.notInclude(rendered, keyB)
        assert.notInclude(rendered, "k-2026_b")
      }
    })
  )

  it.effect("URL-safe base64 and a missing padding are accepted", () =>
    Effect.gen(function* () {
      const urlSafe = Buffer.from(keyB, "base64").toString("base64url")
      const config = yield* parse({ APP_ENV: "staging", ENCRYPTION_KEYS: `a:${urlSafe},b:${keyA.replace(/=$/, "")}` })
      assert.deepStrictEqual(ids(config), ["a", "b"])
    })
  )

  for (const appEnv of ["staging", "production"] as const) {
    for (const value of [undefined, "", " , "]) {
      it.effect(`APP_ENV=${appEnv}, ENCRYPTION_KEYS ${JSON.stringify(value)}: one line naming the variable`, () =>
        Effect.gen(function* () {
          const line = yield* failureLine({
            APP_ENV: appEnv,
            ...(value === undefined ? {} : { ENCRYPTION_KEYS: value })
          })
          assert.match(line, /^invalid configuration: ENCRYPTION_KEYS: /)
          assert.notInclude(line, "\n")
        })
      )
    }
  }

  const malformed: ReadonlyArray<readonly [value: string, message: RegExp]> = [
    [keyA, /entry 1 must be id:base64-of-32-bytes$/],
    [`:${keyA}`, /entry 1: the key id must be 1 to 32 characters/],
    [`${"x".repeat(33)}:${keyA}`, /entry 1: the key id must be 1 to 32 characters/],
    [`a.b:${keyA}`, /entry 1: the key id must be 1 to 32 characters/],
    [`a:${keyA},a:${keyB}`, /entry 2: duplicate key id "a"$/],
    [`a:${keyA},b:not base64!`, /entry 2 \(id "b"\): the key is not base64$/],
    [`a:${keyA.slice(0, 10)}=${keyA.slice(10)}`, /entry 1 \(id "a"\): the key is not base64$/],
    [`a:${Buffer.alloc(16, 7).toString("base64")}`, /entry 1 \(id "a"\): the key must be exactly 32 bytes .*not 16/],
    [`a:${Buffer.alloc(33, 7).toString("base64")}`, /entry 1 \(id "a"\): the key must be exactly 32 bytes .*not 33/],
    [`a:${keyA},b:`, /entry 2 \(id "b"\): the key is not base64$/]
  ]
  for (const [value, message] of malformed) {
    for (const appEnv of ["development", "production"] as const) {
      it.effect(`${appEnv}: ${JSON.stringify(value)} is refused with one line that does not repeat the keys`, () =>
        Effect.gen(function* () {
          const line = yield* failureLine({ APP_ENV: appEnv, ENCRYPTION_KEYS: value })
          assert.match(line, /^invalid configuration: ENCRYPTION_KEYS: /)
          assert.match(line, message)
          assert.notInclude(line, keyA.slice(0, 16))
          assert.notInclude(line, keyB.slice(0, 16))
        })
      )
    }
  }

  it.effect("the public development key is refused outside development (under any id), allowed in development", () =>
    Effect.gen(function* () {
      const value = `mine:${developmentKeyBase64}`
      for (const appEnv of ["staging", "production"]) {
        const line = yield* failureLine({ APP_ENV: appEnv, ENCRYPTION_KEYS: `a:${keyA},${value}` })
        assert.match(line, /^invalid configuration: ENCRYPTION_KEYS: holds the public development key/)
      }
      const config = yield* parse({ ENCRYPTION_KEYS: value })
      assert.isFalse(config.encryption.developmentDefault)
      assert.deepStrictEqual(ids(config), ["mine"])
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
  "WEBHOOK_ALLOWED_PORTS",
  "ENCRYPTION_KEYS",
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
    [
      { SHUTDOWN_TIMEOUT: "soon" },
      /^invalid configuration: SHUTDOWN_TIMEOUT: expected a duration such as 30s, 500ms, 5m, 1h30m or 30 seconds \(not "soon"\)$/
    ],
    [{ LOG_LEVEL: "verbose" }, /^invalid configuration: LOG_LEVEL: Expected "trace" \| "debug" \| .*"none"$/],
    [{ DATABASE_POOL_MAX: "0" }, /^invalid configuration: DATABASE_POOL_MAX: Expected a value between 1 and 10000$/],
    [
      { WEBHOOK_ALLOWED_PORTS: "443,22-" },
      /^invalid configuration: WEBHOOK_ALLOWED_PORTS: expected .*\(not one: "22-"\)$/
    ],
    [
      { SHUTDOWN_DELAY: "-5 seconds" },
      /^invalid configuration: SHUTDOWN_DELAY: must be a finite, non-negative duration$/
    ],
    [
      { APP_ENV: "production", ...keys, SHUTDOWN_TIMEOUT: "3 seconds" },
      /^invalid configuration: SHUTDOWN_DELAY: must not be longer than SHUTDOWN_TIMEOUT/
    ],
    [
      { APP_ENV: "production", ...keys, ADMIN_TOKEN: "hunter2" },
      /^invalid configuration: ADMIN_TOKEN: must be at least 32 characters outside development$/
    ],
    [
      { HTTP_HEADERS_TIMEOUT: "1 minute" },
      /^invalid configuration: HTTP_HEADERS_TIMEOUT: must not be longer than HTTP_REQUEST_TIMEOUT \(1m > 30s\)$/
    ]
  ]

  // The process itself for the first two (exit 1, one line, nothing on stdout: the path every configuration error
  // takes); the rest are the same path with other messages, whose lines are read in process (each Node process that
  // loads the app costs seconds of CPU on a loaded CI machine).
  cases.forEach(([env, expected], index) => {
    if (index < 2) {
      it(`${JSON.stringify(env)}`, async () => {
        const result = await runToExit("src/main.ts", env)
        assertOneLineFailure(result, expected)
        assert.strictEqual(result.stdout, "", "nothing starts, so nothing is logged")
      })
    } else {
      it.effect(`${JSON.stringify(env)} (its line, in process)`, () =>
        Effect.map(failureLine({ HOST: "127.0.0.1", PORT: "0", PGLITE_DIR: "memory://", ...env }), (line) =>
          assert.match(line, expected)
        )
      )
    }
  })

  for (const appEnv of ["staging", "production"]) {
    it(`APP_ENV=${appEnv} without ENCRYPTION_KEYS`, async () => {
      const result = await runToExit("src/main.ts", { APP_ENV: appEnv })
      assertOneLineFailure(
        result,
        new RegExp(`^invalid configuration: ENCRYPTION_KEYS: is required when APP_ENV=${appEnv}`)
      )
      assert.strictEqual(result.stdout, "", "nothing starts, so nothing is logged")
    })
  }

  it("a malformed ENCRYPTION_KEYS, without repeating it", async () => {
    const short = Buffer.alloc(16, 9).toString("base64")
    const result = await runToExit("src/main.ts", { APP_ENV: "production", ENCRYPTION_KEYS: `k1:${short}` })
    assertOneLineFailure(
      result,
      /^invalid configuration: ENCRYPTION_KEYS: entry 1 \(id "k1"\): the key must be exactly 32 bytes/
    )
    assert.notInclude(result.stderr, short)
  })

  it("npm run migrate without ENCRYPTION_KEYS in production", async () => {
    const result = await runToExit("src/migrate.ts", { APP_ENV: "production" })
    assertOneLineFailure(result, /^invalid configuration: ENCRYPTION_KEYS: is required when APP_ENV=production/)
  })

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
          ...keys,
          DATABASE_URL: `postgres://codex:pw-do-not-print@127.0.0.1:${port}/codex`
        })
        const line = assertOneLineFailure(result, /^startup failed: /)
        assert.include(line, `ECONNREFUSED 127.0.0.1:${port}`)
        assert.notInclude(result.stderr + result.stdout, "pw-do-not-print")
      })
    }
  }
})
