import { Config, Duration, Effect, Layer, Option, Redacted, Schema, SchemaIssue, SchemaTransformation } from "effect"
import {
  AppConfig,
  type AppConfigShape,
  type AppEnv,
  type BreakerConfig,
  type DeliveryConfig,
  type EncryptionConfig,
  type HttpServerConfig,
  type IdempotencyConfig,
  type PortalConfig,
  type RateLimitConfig,
  type RetentionConfig,
  type TracingConfig
} from "../services/AppConfig.ts"
import { defaultAllowedPorts, parseAllowedPorts } from "../src/domain/AllowedPorts.ts"
import { parseTrustProxy } from "../src/domain/ClientIp.ts"
import { durationTextExpected, parseDurationText } from "../src/domain/DurationText.ts"
import {
  developmentKey,
  type EncryptionKeyList,
  includesDevelopmentKey,
  includesPlaceholderKey,
  parseEncryptionKeys
} from "../src/domain/EncryptionKeys.ts"
import { packageVersion } from "../src/domain/PackageInfo.ts"
import { defaultFrameAncestors, parseFrameAncestors, parsePublicUrl } from "../src/domain/PortalSettings.ts"

const lowerLogLevels = ["trace", "debug", "info", "warn", "error", "fatal", "none"] as const
const toEffectLogLevel = {
  trace: "Trace",
  debug: "Debug",
  info: "Info",
  warn: "Warn",
  error: "Error",
  fatal: "Fatal",
  none: "None"
} as const

/**
 * Every duration setting reads through this one schema: `30s`, `500ms`, `5m`, `1h30m`, `2d` as well as Effect's
 * `30 seconds` / `500 millis` (src/domain/DurationText.ts). test/config.test.ts finds every variable that reads a
 * duration and checks that it takes the shorthand, so a setting added with `Schema.DurationFromString` fails there.
 */
export const DurationSetting = Schema.String.pipe(
  Schema.decodeTo(
    Schema.Duration,
    SchemaTransformation.transformEffect({
      decode: (text: string) => {
        const duration = parseDurationText(text)
        return duration === undefined
          ? Effect.fail(new SchemaIssue.InvalidValue({ message: `expected ${durationTextExpected} (not "${text}")` }))
          : Effect.succeed(duration)
      },
      encode: (duration: Duration.Duration) => Effect.succeed(String(duration))
    })
  )
)

/** 0 asks the OS for a free port (tests and benchmarks); the bound port is logged at startup. */
const PortOrZero = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 }))
const PositiveInt = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 10_000 }))
/** `Infinity` parses as a Duration too, but an endless shutdown is never what an operator means. */
const NonNegativeDuration = DurationSetting.check(
  Schema.makeFilter(
    (d: Duration.Duration) =>
      (Duration.isFinite(d) && !Duration.isNegative(d)) || "must be a finite, non-negative duration"
  )
)
const Bytes = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1024 * 1024 * 1024 }))

const Ratio = Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 }))
const OptionalPort = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 65535 }))

const tracesSamplers = [
  "always_on",
  "always_off",
  "traceidratio",
  "parentbased_always_on",
  "parentbased_always_off",
  "parentbased_traceidratio"
] as const

/** `http://collector:4318` → `http://collector:4318/v1/traces` (the OTLP/HTTP rule for the signal-less variable). */
const tracesUrlFromBase = (base: URL): string => `${base.href.replace(/\/+$/, "")}/v1/traces`

/**
 * The standard OpenTelemetry variables: tracing is on when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is) or
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` appended) is set. `OTEL_RESOURCE_ATTRIBUTES` is `key=value,...`,
 * percent-decoded.
 */
const tracingConfig: Config.Config<TracingConfig> = Config.all({
  tracesEndpoint: Config.option(Config.URL("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")),
  endpoint: Config.option(Config.URL("OTEL_EXPORTER_OTLP_ENDPOINT")),
  serviceName: Config.NonEmptyString("OTEL_SERVICE_NAME").pipe(Config.withDefault("codex-api")),
  resourceAttributes: Config.Record(
    Schema.StringFromUriComponent,
    Schema.StringFromUriComponent,
    "OTEL_RESOURCE_ATTRIBUTES",
    { trim: true, keepEmptyValues: true }
  ).pipe(Config.withDefault({})),
  sampler: Config.Literals(tracesSamplers, "OTEL_TRACES_SAMPLER").pipe(
    Config.withDefault<(typeof tracesSamplers)[number]>("parentbased_always_on")
  ),
  samplerArg: Config.schema(Ratio, "OTEL_TRACES_SAMPLER_ARG").pipe(Config.withDefault(1))
}).pipe(
  Config.map(({ endpoint, tracesEndpoint, ...rest }) => ({
    ...rest,
    tracesEndpoint: Option.orElse(
      Option.map(tracesEndpoint, (url) => url.href),
      () => Option.map(endpoint, tracesUrlFromBase)
    )
  }))
)

/** A duration above zero and finite (timeouts, backoff, poll interval). */
const PositiveDuration = DurationSetting.check(
  Schema.makeFilter(
    (d: Duration.Duration) =>
      (Duration.isFinite(d) && Duration.isGreaterThan(d, Duration.zero)) || "must be a finite, positive duration"
  )
)
const Attempts = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 100 }))
const Concurrency = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1024 }))

/** The delivery worker's settings (issue 6); defaults documented in the README and the env examples. */
const deliveryConfig: Config.Config<DeliveryConfig> = Config.all({
  worker: Config.Boolean("DELIVERY_WORKER").pipe(Config.withDefault(true)),
  timeout: Config.schema(PositiveDuration, "DELIVERY_TIMEOUT").pipe(Config.withDefault(Duration.seconds(15))),
  maxAttempts: Config.schema(Attempts, "DELIVERY_MAX_ATTEMPTS").pipe(Config.withDefault(5)),
  backoffBase: Config.schema(PositiveDuration, "DELIVERY_BACKOFF_BASE").pipe(Config.withDefault(Duration.minutes(1))),
  backoffMax: Config.schema(PositiveDuration, "DELIVERY_BACKOFF_MAX").pipe(Config.withDefault(Duration.hours(1))),
  concurrency: Config.schema(Concurrency, "DELIVERY_CONCURRENCY").pipe(Config.withDefault(32)),
  endpointConcurrency: Config.schema(Concurrency, "DELIVERY_ENDPOINT_CONCURRENCY").pipe(Config.withDefault(4)),
  pollInterval: Config.schema(PositiveDuration, "DELIVERY_POLL_INTERVAL").pipe(Config.withDefault(Duration.seconds(1))),
  leaseMargin: Config.schema(PositiveDuration, "DELIVERY_LEASE_MARGIN").pipe(Config.withDefault(Duration.seconds(30))),
  disableAfter: Config.schema(PositiveDuration, "ENDPOINT_DISABLE_AFTER").pipe(Config.withDefault(Duration.days(5))),
  tenantConcurrency: Config.option(Config.schema(Concurrency, "DELIVERY_TENANT_CONCURRENCY"))
}).pipe(
  // Half the slots by default: one tenant alone still gets half the worker, and whatever it does, the other half
  // stays free for everyone else.
  Config.map(({ tenantConcurrency, ...rest }) => ({
    ...rest,
    tenantConcurrency: Option.getOrElse(tenantConcurrency, () => Math.ceil(rest.concurrency / 2))
  }))
)

const BreakerThreshold = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1000 }))

/** The per-endpoint circuit breaker (issue 6): `BREAKER_*`; defaults argued in the README. */
const breakerConfig: Config.Config<BreakerConfig> = Config.all({
  failureThreshold: Config.schema(BreakerThreshold, "BREAKER_FAILURE_THRESHOLD").pipe(Config.withDefault(5)),
  openBase: Config.schema(PositiveDuration, "BREAKER_OPEN_BASE").pipe(Config.withDefault(Duration.seconds(30))),
  openMax: Config.schema(PositiveDuration, "BREAKER_OPEN_MAX").pipe(Config.withDefault(Duration.minutes(10))),
  redisPrefix: Config.NonEmptyString("BREAKER_REDIS_PREFIX").pipe(Config.withDefault("codex:circuit:"))
})

/**
 * Reads a comma-separated list; blank items are dropped, so `CORS_ORIGINS=","` means "no origins". An empty variable
 * (`CORS_ORIGINS=`) counts as unset, like every other variable here (the env ConfigProvider's rule).
 */
const commaList = (name: string) =>
  Config.String(name).pipe(
    Config.map((raw) =>
      raw
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s.length > 0)
    )
  )

/**
 * `SHUTDOWN_DELAY` is spent inside `SHUTDOWN_TIMEOUT` (the drain gets what is left), so a longer delay would silently
 * break the deadline, e.g. `APP_ENV=production SHUTDOWN_TIMEOUT="3 seconds"` with the 5-second default delay.
 */
const delayWithinTimeout = (config: AppConfigShape): Config.Config<AppConfigShape> =>
  Duration.isGreaterThan(config.shutdownDelay, config.shutdownTimeout)
    ? Config.fail(
        new Schema.SchemaError(
          new SchemaIssue.Pointer(
            ["SHUTDOWN_DELAY"],
            new SchemaIssue.InvalidValue({
              message: `must not be longer than SHUTDOWN_TIMEOUT (${Duration.format(config.shutdownDelay)} > ${Duration.format(config.shutdownTimeout)})`
            })
          )
        )
      )
    : Config.succeed(config)

/** The shortest ADMIN_TOKEN accepted outside development: 32 characters of a random token are far beyond guessing. */
export const adminTokenMinLength = 32

/**
 * ADMIN_TOKEN opens every tenant's data: outside development a short one (a password someone typed) stops startup.
 * Development keeps any value, for the README walkthrough.
 */
const strongAdminToken = (config: AppConfigShape): Config.Config<AppConfigShape> => {
  if (config.appEnv === "development" || Option.isNone(config.adminToken)) return Config.succeed(config)
  const token = Redacted.value(config.adminToken.value)
  if (token.length < adminTokenMinLength) {
    return configFailure("ADMIN_TOKEN", `must be at least ${adminTokenMinLength} characters outside development`)
  }
  // The example files' value, copied unedited, is public.
  if (token.includes("CHANGE_ME")) {
    return configFailure(
      "ADMIN_TOKEN",
      "is still the example's placeholder: set a random token (openssl rand -base64 32)"
    )
  }
  return Config.succeed(config)
}

/** `RETENTION`: any positive duration up to 10 years (the tenants' own override has the same bound). */
const RetentionDuration = PositiveDuration.check(
  Schema.makeFilter(
    (d: Duration.Duration) => Duration.isLessThanOrEqualTo(d, Duration.days(3650)) || "must be at most 3650 days"
  )
)

/** `RETENTION` (default 30 days) and `RETENTION_PURGE_INTERVAL` (default 1 minute). */
const retentionConfig: Config.Config<RetentionConfig> = Config.all({
  keep: Config.schema(RetentionDuration, "RETENTION").pipe(Config.withDefault(Duration.days(30))),
  purgeEvery: Config.schema(PositiveDuration, "RETENTION_PURGE_INTERVAL").pipe(Config.withDefault(Duration.minutes(1)))
})

/**
 * How long an `Idempotency-Key` may be kept: up to 24 hours, what Svix keeps. Longer would only grow the table with
 * answers no client retries for.
 */
const IdempotencyTtl = DurationSetting.check(
  Schema.makeFilter(
    (d: Duration.Duration) =>
      (Duration.isGreaterThan(d, Duration.zero) && Duration.isLessThanOrEqualTo(d, Duration.hours(24))) ||
      "must be a positive duration of at most 24 hours"
  )
)

/** `IDEMPOTENCY_TTL` (default 5 minutes, the product spec), `IDEMPOTENCY_LOCK_TIMEOUT`, `IDEMPOTENCY_REQUIRED`. */
const idempotencyConfig: Config.Config<IdempotencyConfig> = Config.all({
  ttl: Config.schema(IdempotencyTtl, "IDEMPOTENCY_TTL").pipe(Config.withDefault(Duration.minutes(5))),
  lockTimeout: Config.schema(PositiveDuration, "IDEMPOTENCY_LOCK_TIMEOUT").pipe(
    Config.withDefault(Duration.seconds(60))
  ),
  required: Config.Boolean("IDEMPOTENCY_REQUIRED").pipe(Config.withDefault(false))
})

const configFailure = (name: string, message: string) =>
  Config.fail(new Schema.SchemaError(new SchemaIssue.Pointer([name], new SchemaIssue.InvalidValue({ message }))))

/** `WEBHOOK_ALLOWED_PORTS`: ports and ranges, `80,443,1024-65535` by default (src/domain/AllowedPorts.ts). */
const allowedPortsConfig = Config.option(Config.String("WEBHOOK_ALLOWED_PORTS")).pipe(
  Config.flatMap((raw) => {
    if (Option.isNone(raw)) return Config.succeed(defaultAllowedPorts)
    const ports = parseAllowedPorts(raw.value)
    return typeof ports === "string" ? configFailure("WEBHOOK_ALLOWED_PORTS", ports) : Config.succeed(ports)
  })
)

const RateLimitMax = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1_000_000_000 }))
/** Whole seconds: the RateLimit-Policy header states the window in seconds (`w=900`). */
const RateLimitWindow = DurationSetting.check(
  Schema.makeFilter(
    (d: Duration.Duration) =>
      (Duration.isFinite(d) && Duration.toMillis(d) >= 1000 && Duration.toMillis(d) % 1000 === 0) ||
      "must be a whole number of seconds, at least 1 second"
  )
)

/** The product's quota, the default in staging and production: 100 requests per `RATE_LIMIT_WINDOW` (15 minutes). */
export const productRateLimitMax = 100
/**
 * The development default: exploring the API (the docs page's "try it", curl loops, a UI polling) used up the
 * product's 100 within minutes. Same window, so the headers read the same; startup says which quota is in use.
 */
export const developmentRateLimitMax = 10_000

/**
 * `RATE_LIMIT_*` (defaults 100 requests per 15 minutes, the product spec; 10,000 in development), `REDIS_URL` (read
 * always, required by `RATE_LIMIT_STORE=redis`) and `TRUST_PROXY` (a hop count or CIDRs; see src/domain/ClientIp.ts).
 */
const rateLimitConfig = (appEnv: AppEnv): Config.Config<RateLimitConfig> =>
  Config.all({
    enabled: Config.Boolean("RATE_LIMIT_ENABLED").pipe(Config.withDefault(true)),
    max: Config.schema(RateLimitMax, "RATE_LIMIT_MAX").pipe(
      Config.withDefault(appEnv === "development" ? developmentRateLimitMax : productRateLimitMax)
    ),
    window: Config.schema(RateLimitWindow, "RATE_LIMIT_WINDOW").pipe(Config.withDefault(Duration.minutes(15))),
    store: Config.Literals(["memory", "redis"], "RATE_LIMIT_STORE").pipe(
      Config.withDefault<"memory" | "redis">("memory")
    ),
    redisUrl: Config.option(Config.Redacted("REDIS_URL")),
    onStoreError: Config.Literals(["allow", "deny"], "RATE_LIMIT_ON_STORE_ERROR").pipe(
      Config.withDefault<"allow" | "deny">("allow")
    ),
    trustProxy: Config.option(Config.String("TRUST_PROXY"))
  }).pipe(
    Config.flatMap(({ trustProxy, ...rest }) => {
      const trust = Option.match(trustProxy, { onNone: () => ({ _tag: "None" }) as const, onSome: parseTrustProxy })
      if (typeof trust === "string") return configFailure("TRUST_PROXY", trust)
      if (rest.store === "redis" && Option.isNone(rest.redisUrl)) {
        return configFailure("REDIS_URL", "is required when RATE_LIMIT_STORE=redis")
      }
      return Config.succeed({ ...rest, trustProxy: trust })
    })
  )

/**
 * `ENCRYPTION_KEYS` (secrets at rest): `id:base64-of-32-bytes,...`, the first key sealing. Required in staging and
 * production; unset in development, the public development key (with a warning at startup). The public key is refused
 * outside development. Read as a Redacted value, and no error message repeats it.
 */
const encryptionConfig = (appEnv: AppEnv): Config.Config<EncryptionConfig> =>
  Config.option(Config.Redacted("ENCRYPTION_KEYS")).pipe(
    Config.flatMap((raw): Config.Config<EncryptionConfig> => {
      if (Option.isNone(raw)) {
        if (appEnv !== "development") {
          return configFailure(
            "ENCRYPTION_KEYS",
            `is required when APP_ENV=${appEnv}: id:base64-of-32-bytes (generate a key with: openssl rand -base64 32)`
          )
        }
        const keys: EncryptionKeyList = [developmentKey]
        return Config.succeed({ keys: Redacted.make(keys), developmentDefault: true })
      }
      const keys = parseEncryptionKeys(Redacted.value(raw.value))
      if (typeof keys === "string") return configFailure("ENCRYPTION_KEYS", keys)
      if (appEnv !== "development" && includesDevelopmentKey(keys)) {
        return configFailure(
          "ENCRYPTION_KEYS",
          `holds the public development key, which is refused when APP_ENV=${appEnv}`
        )
      }
      if (appEnv !== "development" && includesPlaceholderKey(keys)) {
        return configFailure(
          "ENCRYPTION_KEYS",
          `holds a placeholder (one byte repeated), refused when APP_ENV=${appEnv}: generate a key with openssl rand -base64 32`
        )
      }
      return Config.succeed({ keys: Redacted.make(keys), developmentDefault: false })
    })
  )

/**
 * A listener timeout: positive, and at most a day (Node arms `keepAliveTimeout` with `setTimeout`, which fires at
 * once past 2^31-1 ms, about 24.8 days).
 */
const ListenerTimeout = DurationSetting.check(
  Schema.makeFilter(
    (d: Duration.Duration) =>
      (Duration.isGreaterThan(d, Duration.zero) && Duration.isLessThanOrEqualTo(d, Duration.days(1))) ||
      "must be a positive duration of at most 1 day"
  )
)
const MaxConnections = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1_000_000 }))

/**
 * The listener's defaults, the same in every APP_ENV (argued in the README, "Connections and timeouts"): a connection
 * that sends nothing is closed after 20 s; a request has 30 s to arrive whole (256 KiB at ~70 kbit/s); idle
 * keep-alive connections close after 5 s (Node's default); 10,000 connections cost ~130-150 MB (measured ~13-15 KiB
 * each), within the 512 MiB the deployment allows.
 */
export const httpServerDefaults: HttpServerConfig = {
  headersTimeout: Duration.seconds(20),
  requestTimeout: Duration.seconds(30),
  keepAliveTimeout: Duration.seconds(5),
  maxConnections: 10_000
}

/**
 * `HTTP_HEADERS_TIMEOUT`, `HTTP_REQUEST_TIMEOUT`, `HTTP_KEEP_ALIVE_TIMEOUT`, `HTTP_MAX_CONNECTIONS`. Node refuses a
 * headers timeout longer than the request timeout (it would never fire), so that is reported here, as one line.
 */
const httpServerConfig: Config.Config<HttpServerConfig> = Config.all({
  headersTimeout: Config.schema(ListenerTimeout, "HTTP_HEADERS_TIMEOUT").pipe(
    Config.withDefault(httpServerDefaults.headersTimeout)
  ),
  requestTimeout: Config.schema(ListenerTimeout, "HTTP_REQUEST_TIMEOUT").pipe(
    Config.withDefault(httpServerDefaults.requestTimeout)
  ),
  keepAliveTimeout: Config.schema(ListenerTimeout, "HTTP_KEEP_ALIVE_TIMEOUT").pipe(
    Config.withDefault(httpServerDefaults.keepAliveTimeout)
  ),
  maxConnections: Config.schema(MaxConnections, "HTTP_MAX_CONNECTIONS").pipe(
    Config.withDefault(httpServerDefaults.maxConnections)
  )
}).pipe(
  Config.flatMap((http) =>
    Duration.isGreaterThan(http.headersTimeout, http.requestTimeout)
      ? configFailure(
          "HTTP_HEADERS_TIMEOUT",
          `must not be longer than HTTP_REQUEST_TIMEOUT (${Duration.format(http.headersTimeout)} > ${Duration.format(http.requestTimeout)})`
        )
      : Config.succeed(http)
  )
)

/**
 * A portal session's lifetime: from 1 second (a session's `expiresIn` counts whole seconds) to 24 hours. The link is a
 * bearer credential in a URL: an operator embedding the portal mints one per page view, and a day covers any view.
 */
const PortalSessionTtl = DurationSetting.check(
  Schema.makeFilter(
    (d: Duration.Duration) =>
      (Duration.isGreaterThanOrEqualTo(d, Duration.seconds(1)) &&
        Duration.isLessThanOrEqualTo(d, Duration.hours(24))) ||
      "must be a duration from 1 second to 24 hours"
  )
)

/** `PORTAL_SESSION_TTL` (default 1 hour) and `PORTAL_FRAME_ANCESTORS` (default `'none'`). */
const portalConfig: Config.Config<PortalConfig> = Config.all({
  sessionTtl: Config.schema(PortalSessionTtl, "PORTAL_SESSION_TTL").pipe(Config.withDefault(Duration.hours(1))),
  frameAncestors: Config.option(Config.String("PORTAL_FRAME_ANCESTORS"))
}).pipe(
  Config.flatMap(({ sessionTtl, frameAncestors }) => {
    if (Option.isNone(frameAncestors)) return Config.succeed({ sessionTtl, frameAncestors: defaultFrameAncestors })
    const parsed = parseFrameAncestors(frameAncestors.value)
    return "error" in parsed
      ? configFailure("PORTAL_FRAME_ANCESTORS", parsed.error)
      : Config.succeed({ sessionTtl, frameAncestors: parsed })
  })
)

/** `PUBLIC_URL`: an http(s) origin (src/domain/PortalSettings.ts); unset = the origin of each request. */
const publicUrlConfig = Config.option(Config.String("PUBLIC_URL")).pipe(
  Config.flatMap((raw) => {
    if (Option.isNone(raw)) return Config.succeed(Option.none<string>())
    const parsed = parsePublicUrl(raw.value)
    return typeof parsed === "string" ? Config.succeed(Option.some(parsed)) : configFailure("PUBLIC_URL", parsed.error)
  })
)

/**
 * The environment variables codex-api reads, with their defaults. Defaults that depend on `APP_ENV` (log format,
 * shutdown delay) are resolved after `APP_ENV` itself is read. An empty variable counts as unset.
 */
export const appConfig: Config.Config<AppConfigShape> = Config.Literals(
  ["development", "staging", "production"],
  "APP_ENV"
).pipe(
  Config.withDefault<AppEnv>("development"),
  Config.flatMap((appEnv) =>
    Config.all({
      appEnv: Config.succeed(appEnv),
      version: Config.succeed(packageVersion),
      host: Config.NonEmptyString("HOST").pipe(Config.withDefault("0.0.0.0")),
      port: Config.schema(PortOrZero, "PORT").pipe(Config.withDefault(3000)),
      databaseUrl: Config.option(Config.Redacted("DATABASE_URL")),
      pgliteDir: Config.NonEmptyString("PGLITE_DIR").pipe(Config.withDefault(".data/pglite")),
      databasePoolMax: Config.schema(PositiveInt, "DATABASE_POOL_MAX").pipe(Config.withDefault(10)),
      logLevel: Config.Literals(lowerLogLevels, "LOG_LEVEL").pipe(
        Config.withDefault("info" as const),
        Config.map((level) => toEffectLogLevel[level])
      ),
      logFormat: Config.Literals(["json", "pretty"], "LOG_FORMAT").pipe(
        Config.withDefault(appEnv === "development" ? ("pretty" as const) : ("json" as const))
      ),
      shutdownTimeout: Config.schema(NonNegativeDuration, "SHUTDOWN_TIMEOUT").pipe(
        Config.withDefault(Duration.seconds(25))
      ),
      shutdownDelay: Config.schema(NonNegativeDuration, "SHUTDOWN_DELAY").pipe(
        Config.withDefault(appEnv === "development" ? Duration.zero : Duration.seconds(5))
      ),
      adminToken: Config.option(Config.Redacted("ADMIN_TOKEN")),
      corsOrigins: Config.option(commaList("CORS_ORIGINS")),
      bodyLimitBytes: Config.schema(Bytes, "BODY_LIMIT_BYTES").pipe(Config.withDefault(256 * 1024)),
      http: httpServerConfig,
      webhookAllowPrivateNetworks: Config.Boolean("WEBHOOK_ALLOW_PRIVATE_NETWORKS").pipe(
        Config.withDefault(appEnv === "development")
      ),
      webhookAllowedPorts: allowedPortsConfig,
      accessLog: Config.Boolean("ACCESS_LOG").pipe(Config.withDefault(true)),
      accessLogProbes: Config.Boolean("ACCESS_LOG_PROBES").pipe(Config.withDefault(false)),
      metricsEnabled: Config.Boolean("METRICS_ENABLED").pipe(Config.withDefault(true)),
      metricsPort: Config.option(Config.schema(OptionalPort, "METRICS_PORT")),
      tracing: tracingConfig,
      delivery: deliveryConfig,
      redisUrl: Config.option(Config.Redacted("REDIS_URL")),
      breaker: breakerConfig,
      idempotency: idempotencyConfig,
      retention: retentionConfig,
      rateLimit: rateLimitConfig(appEnv),
      encryption: encryptionConfig(appEnv),
      publicUrl: publicUrlConfig,
      portal: portalConfig
    })
  ),
  Config.flatMap(delayWithinTimeout),
  Config.flatMap(strongAdminToken)
)

/** Reads and validates the configuration from the process environment (the default ConfigProvider). */
export const AppConfigLive: Layer.Layer<AppConfig, Config.ConfigError> = Layer.effect(
  AppConfig,
  Effect.gen(function* () {
    return yield* appConfig
  })
)
