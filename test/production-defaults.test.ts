import { readFileSync } from "node:fs"
import { join } from "node:path"
import { assert, describe, it, layer } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Layer, Option, Redacted } from "effect"
import { appConfig } from "../layers/AppConfigLive.ts"
import { TenantsLive } from "../layers/TenantsLive.ts"
import { AppConfig, type AppConfigShape, type AppEnv } from "../services/AppConfig.ts"
import { Tenants } from "../services/Tenants.ts"
import { developmentKey } from "../src/domain/EncryptionKeys.ts"
import { packageRoot, packageVersion } from "../src/domain/PackageInfo.ts"
import { describeStartupFailure } from "../src/StartupError.ts"
import { appConfigTest, testEncryption } from "./support/appConfig.ts"
import { parseConfig, requiredVariables, settingsOf } from "./support/defaultConfig.ts"
import { request } from "./support/http.ts"
import { expectProblem } from "./support/problems.ts"
import { testServerWithSql } from "./support/sharedDatabase.ts"

/**
 * Issue 16, item 1: the defaults an operator gets, read by the real parser (layers/AppConfigLive.ts) for each APP_ENV
 * with only the required variables set, against (a) every setting written out below and (b) the README's
 * configuration table, whose Default column is read here, so code, README and this test cannot drift apart. Test
 * servers run on `appConfigTest`, which is checked to be production's configuration but for the departures listed.
 */

const appEnvs: ReadonlyArray<AppEnv> = ["development", "staging", "production"]

/** Every setting's default, as the README documents it. Typed: a new setting does not compile until it is here. */
const documentedDefaults = (appEnv: AppEnv): AppConfigShape => {
  const development = appEnv === "development"
  return {
    appEnv,
    version: packageVersion,
    host: "0.0.0.0",
    port: 3000,
    databaseUrl: Option.none(),
    pgliteDir: ".data/pglite",
    databasePoolMax: 10,
    logLevel: "Info",
    logFormat: development ? "pretty" : "json",
    shutdownTimeout: Duration.seconds(25),
    shutdownDelay: development ? Duration.zero : Duration.seconds(5),
    adminToken: Option.none(),
    corsOrigins: Option.none(),
    bodyLimitBytes: 262_144,
    http: {
      headersTimeout: Duration.seconds(20),
      requestTimeout: Duration.seconds(30),
      keepAliveTimeout: Duration.seconds(5),
      maxConnections: 10_000
    },
    // The SSRF guard: off only in development.
    webhookAllowPrivateNetworks: development,
    webhookAllowedPorts: [
      { from: 80, to: 80 },
      { from: 443, to: 443 },
      { from: 1024, to: 65535 }
    ],
    accessLog: true,
    accessLogProbes: false,
    metricsEnabled: true,
    metricsPort: Option.none(),
    tracing: {
      tracesEndpoint: Option.none(),
      serviceName: "codex-api",
      resourceAttributes: {},
      sampler: "parentbased_always_on",
      samplerArg: 1
    },
    delivery: {
      worker: true,
      timeout: Duration.seconds(15),
      maxAttempts: 5,
      backoffBase: Duration.minutes(1),
      backoffMax: Duration.hours(1),
      concurrency: 32,
      endpointConcurrency: 4,
      tenantConcurrency: 16,
      pollInterval: Duration.seconds(1),
      leaseMargin: Duration.seconds(30),
      disableAfter: Duration.days(5)
    },
    redisUrl: Option.none(),
    breaker: {
      failureThreshold: 5,
      openBase: Duration.seconds(30),
      openMax: Duration.minutes(10),
      redisPrefix: "codex:circuit:"
    },
    idempotency: { ttl: Duration.minutes(5), lockTimeout: Duration.seconds(60), required: false },
    retention: { keep: Duration.days(30), purgeEvery: Duration.minutes(1) },
    rateLimit: {
      enabled: true,
      // The product's quota is 100 requests per 15 minutes; development's is generous for exploring the API.
      max: development ? 10_000 : 100,
      window: Duration.minutes(15),
      store: "memory",
      redisUrl: Option.none(),
      onStoreError: "allow",
      trustProxy: { _tag: "None" }
    },
    // Unset in development: the public development key. Required elsewhere: the key the test set.
    encryption: development ? { keys: Redacted.make([developmentKey]), developmentDefault: true } : testEncryption(),
    // Unset: links name the origin each request came in on.
    publicUrl: Option.none(),
    portal: { sessionTtl: Duration.hours(1), frameAncestors: ["'none'"] }
  }
}

/** The settings that differ between two configurations, each as `path: a → b`. */
const differences = (a: AppConfigShape, b: AppConfigShape): ReadonlyArray<string> => {
  const left = settingsOf(a)
  const right = settingsOf(b)
  return [...new Set([...left.keys(), ...right.keys()])]
    .filter((path) => left.get(path) !== right.get(path))
    .map((path) => `${path}: ${left.get(path) ?? "(absent)"} → ${right.get(path) ?? "(absent)"}`)
}

describe("the defaults the real parser gives", () => {
  for (const appEnv of appEnvs) {
    it.effect(`APP_ENV=${appEnv}: every setting`, () =>
      Effect.gen(function* () {
        const parsed = yield* parseConfig(appEnv)
        assert.deepStrictEqual(differences(documentedDefaults(appEnv), parsed), [])
      })
    )
  }

  it.effect("APP_ENV unset is development", () =>
    Effect.gen(function* () {
      const unset = yield* appConfig.parse(ConfigProvider.fromEnv({ env: {} }))
      assert.deepStrictEqual(differences(documentedDefaults("development"), unset), [])
    })
  )
})

// ---------------------------------------------------------------------------------------------------------------
// The README's configuration table, Default column
// ---------------------------------------------------------------------------------------------------------------

/** What the README says a variable is when it is not set, in one APP_ENV. */
type Documented = { readonly value: string } | "unset" | "required"

interface TableRow {
  readonly variable: string
  readonly cell: string
}

/** The rows of the README's configuration table: variable and Default cell. */
const tableRows = (): ReadonlyArray<TableRow> => {
  const readme = readFileSync(join(packageRoot, "README.md"), "utf8")
  const section = readme.split(/^## Configuration$/m)[1]?.split(/^## /m)[0] ?? ""
  return [...section.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \| (.+?) \| /gm)].map((m) => ({
    variable: m[1] ?? "",
    cell: m[2] ?? ""
  }))
}

/**
 * A Default cell per APP_ENV: `` `x` `` (an aside in parentheses may follow), `` `x` in development, else `y` ``,
 * `unset`, or ENCRYPTION_KEYS' `required in staging and production; unset in development ...`. Undefined for any
 * other wording, which the test then reports.
 */
const readCell = (cell: string): Readonly<Record<AppEnv, Documented>> | undefined => {
  const everywhere = (documented: Documented) => ({
    development: documented,
    staging: documented,
    production: documented
  })
  const value = /^`([^`]*)`(?: \([^)]*\))?$/.exec(cell)
  if (value?.[1] !== undefined) return everywhere({ value: value[1] })
  const byEnv = /^`([^`]*)` in development, else `([^`]*)`$/.exec(cell)
  if (byEnv?.[1] !== undefined && byEnv[2] !== undefined) {
    return { development: { value: byEnv[1] }, staging: { value: byEnv[2] }, production: { value: byEnv[2] } }
  }
  if (cell === "unset") return everywhere("unset")
  if (/^required in staging and production; unset in development\b/.test(cell)) {
    return { development: "unset", staging: "required", production: "required" }
  }
  return undefined
}

/**
 * How each variable documented as `unset` shows in the configuration: absent. A variable the README calls unset must
 * be listed here (and one listed must be documented so), so a default added in either place fails this test.
 */
const unsetMeans: Readonly<Record<string, (config: AppConfigShape) => boolean>> = {
  DATABASE_URL: (c) => Option.isNone(c.databaseUrl),
  ADMIN_TOKEN: (c) => Option.isNone(c.adminToken),
  ENCRYPTION_KEYS: (c) => c.encryption.developmentDefault,
  CORS_ORIGINS: (c) => Option.isNone(c.corsOrigins),
  METRICS_PORT: (c) => Option.isNone(c.metricsPort),
  OTEL_EXPORTER_OTLP_ENDPOINT: (c) => Option.isNone(c.tracing.tracesEndpoint),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: (c) => Option.isNone(c.tracing.tracesEndpoint),
  OTEL_RESOURCE_ATTRIBUTES: (c) => Object.keys(c.tracing.resourceAttributes).length === 0,
  REDIS_URL: (c) => Option.isNone(c.redisUrl) && Option.isNone(c.rateLimit.redisUrl),
  TRUST_PROXY: (c) => c.rateLimit.trustProxy._tag === "None",
  PUBLIC_URL: (c) => Option.isNone(c.publicUrl)
}

describe("README's configuration table, Default column", () => {
  const rows = tableRows()
  const read = rows.map((row) => ({ ...row, defaults: readCell(row.cell) }))
  const documentedIn = (appEnv: AppEnv, what: "unset" | "required") =>
    read.filter((row) => row.defaults?.[appEnv] === what).map((row) => row.variable)

  it("has a row for every variable, each Default in a form this test reads", () => {
    // A sanity floor, so a table this test no longer finds cannot pass as empty.
    assert.isAtLeast(rows.length, 50)
    assert.deepStrictEqual(
      read.filter((row) => row.defaults === undefined).map((row) => `${row.variable}: ${row.cell}`),
      []
    )
  })

  it("what it calls unset is exactly what this test checks as absent", () => {
    const unsetAnywhere = new Set(appEnvs.flatMap((appEnv) => documentedIn(appEnv, "unset")))
    assert.deepStrictEqual([...unsetAnywhere].sort(), Object.keys(unsetMeans).sort())
  })

  it.effect("APP_ENV: unset is its documented default", () =>
    Effect.gen(function* () {
      const documented = read.find((row) => row.variable === "APP_ENV")?.defaults?.development
      assert.deepStrictEqual(documented, { value: "development" })
      const unset = yield* appConfig.parse(ConfigProvider.fromEnv({ env: {} }))
      const spelledOut = yield* appConfig.parse(ConfigProvider.fromEnv({ env: { APP_ENV: "development" } }))
      assert.deepStrictEqual(differences(unset, spelledOut), [])
    })
  )

  for (const appEnv of appEnvs) {
    it.effect(`APP_ENV=${appEnv}: setting a variable to its documented Default changes nothing`, () =>
      Effect.gen(function* () {
        const defaults = yield* parseConfig(appEnv)
        const drifted: Array<string> = []
        for (const { variable, defaults: documented } of read) {
          const expected = documented?.[appEnv]
          if (variable === "APP_ENV" || expected === undefined || typeof expected === "string") continue
          const set = yield* parseConfig(appEnv, { [variable]: expected.value }).pipe(Effect.result)
          if (set._tag === "Failure") {
            drifted.push(`${variable}=${expected.value} does not parse: ${describeStartupFailure(set.failure)}`)
            continue
          }
          for (const change of differences(defaults, set.success))
            drifted.push(`${variable}=${expected.value}: ${change}`)
        }
        assert.deepStrictEqual(drifted, [])
      })
    )

    it.effect(`APP_ENV=${appEnv}: what the README calls unset is absent`, () =>
      Effect.gen(function* () {
        const config = yield* parseConfig(appEnv)
        const present = documentedIn(appEnv, "unset").filter((variable) => unsetMeans[variable]?.(config) !== true)
        assert.deepStrictEqual(present, [])
      })
    )

    it.effect(`APP_ENV=${appEnv}: what the README calls required stops startup without it`, () =>
      Effect.gen(function* () {
        const required = documentedIn(appEnv, "required")
        assert.deepStrictEqual(required.sort(), Object.keys(requiredVariables(appEnv)).sort())
        for (const variable of required) {
          const env: Record<string, string> = { APP_ENV: appEnv, ...requiredVariables(appEnv) }
          delete env[variable]
          const failure = yield* appConfig.parse(ConfigProvider.fromEnv({ env })).pipe(Effect.flip)
          assert.match(describeStartupFailure(failure), new RegExp(`^invalid configuration: ${variable}: `))
        }
      })
    )
  }
})

// ---------------------------------------------------------------------------------------------------------------
// The test configuration
// ---------------------------------------------------------------------------------------------------------------

/**
 * Where `appConfigTest` (what every test server runs on, before a test's own overrides) departs from the production
 * defaults, and why. Everything else is production's value.
 */
const testConfigDepartures: Readonly<Record<string, string>> = {
  appEnv: "development: the admin API is open without ADMIN_TOKEN (how tests create tenants)",
  host: "127.0.0.1: loopback only",
  port: "0: a free port, so test files run in parallel",
  pgliteDir: "memory://: nothing written to disk",
  databasePoolMax: "4: test files run in parallel on one PostgreSQL server, each with its own pools",
  shutdownTimeout: "5 s: a test's server stops within seconds",
  shutdownDelay: "0: no load balancer to wait for",
  webhookAllowPrivateNetworks: "true: the tests' receivers listen on 127.0.0.1",
  "delivery.worker": "off: most tests register endpoints that must never be called",
  "delivery.backoffBase": "50 ms: retries within a test's time",
  "delivery.backoffMax": "200 ms: retries within a test's time",
  "rateLimit.max": "1,000,000: a suite sends far more than 100 requests from one address (rate-limit tests set theirs)"
}

describe("the test configuration (appConfigTest)", () => {
  it.effect("is the production defaults but for the departures listed, each for a reason", () =>
    Effect.gen(function* () {
      const production = yield* parseConfig("production")
      const test = yield* Effect.gen(function* () {
        return yield* AppConfig
      }).pipe(Effect.provide(appConfigTest()))
      const departed = differences(production, test).map((difference) => difference.split(":")[0] ?? "")
      assert.deepStrictEqual(departed.sort(), Object.keys(testConfigDepartures).sort())
    })
  )
})

// ---------------------------------------------------------------------------------------------------------------
// A server on the production defaults
// ---------------------------------------------------------------------------------------------------------------

/**
 * The real server on the configuration production gets with nothing set but ENCRYPTION_KEYS: only where it listens
 * (loopback, a free port), its database (this file's) and its drain delay are the test's. The delay (5 s of 503s on
 * /readyz for a load balancer) is only spent when the server stops: it would add 5 s to the file and prove nothing
 * here. The admin API is off (no ADMIN_TOKEN), so the tenant is made through the Tenants service on the same database.
 */
const productionServer = Layer.unwrap(
  Effect.map(parseConfig("production"), (production) =>
    TenantsLive.pipe(
      Layer.provideMerge(
        testServerWithSql({ config: { ...production, host: "127.0.0.1", port: 0, shutdownDelay: Duration.zero } })
      )
    )
  )
)

layer(productionServer, { excludeTestServices: true })("a server on the production defaults", (it) => {
  it.effect(
    "refuses webhook URLs on private addresses (the SSRF guard is on) and plain http; accepts a public one",
    () =>
      Effect.gen(function* () {
        const tenants = yield* Tenants
        const { apiKey } = yield* tenants.create({ name: "Production defaults" }).pipe(Effect.orDie)
        const create = (url: string) => request("/v1/endpoints", { bearer: apiKey.key, json: { url } })
        for (const url of ["https://127.0.0.1:8443/hook", "https://10.0.0.1/hook", "https://169.254.169.254/latest"]) {
          const problem = expectProblem(yield* create(url), 422)
          assert.strictEqual(problem.detail, "The endpoint URL is not allowed: the destination is not permitted.", url)
        }
        const plain = expectProblem(yield* create("http://93.184.216.34/hook"), 422)
        assert.strictEqual(plain.detail, "The endpoint URL is not allowed: https is required in production.")
        const accepted = yield* create("https://93.184.216.34/hook")
        assert.strictEqual(accepted.status, 201, accepted.text)
      })
  )

  it.effect("serves no admin API (ADMIN_TOKEN unset)", () =>
    Effect.gen(function* () {
      const response = yield* request("/admin/tenants")
      assert.strictEqual(response.status, 404, response.text)
    })
  )
})
