import type { Duration, LogLevel, Option, Redacted } from "effect"
import { Context } from "effect"
import type { AllowedPorts } from "../src/domain/AllowedPorts.ts"
import type { TrustProxy } from "../src/domain/ClientIp.ts"
import type { EncryptionKeyList } from "../src/domain/EncryptionKeys.ts"

/** Deployment environment; it changes defaults (log format, shutdown delay, CORS, HSTS, seeding). */
export type AppEnv = "development" | "staging" | "production"

export type LogFormat = "json" | "pretty"

/** `OTEL_TRACES_SAMPLER` values (the OpenTelemetry SDK environment specification). */
export type TracesSampler =
  | "always_on"
  | "always_off"
  | "traceidratio"
  | "parentbased_always_on"
  | "parentbased_always_off"
  | "parentbased_traceidratio"

/** Tracing: on when an OTLP endpoint is configured, otherwise nothing is exported and no exporter exists. */
export interface TracingConfig {
  /** Full OTLP/HTTP traces URL (`.../v1/traces`); None = tracing off. */
  readonly tracesEndpoint: Option.Option<string>
  readonly serviceName: string
  readonly resourceAttributes: Readonly<Record<string, string>>
  readonly sampler: TracesSampler
  /** Ratio for the `*traceidratio` samplers, 0..1. */
  readonly samplerArg: number
}

/** The webhook delivery worker (issue 6). */
export interface DeliveryConfig {
  /** Run the delivery worker inside the API process (`npm run worker` runs it on its own regardless). */
  readonly worker: boolean
  /** Deadline of one delivery attempt: connect, send, response headers and the first 4 KiB of the body. */
  readonly timeout: Duration.Duration
  /** Attempts in total, the first included; after the last failure the delivery is `failed`. */
  readonly maxAttempts: number
  /** Exponential backoff: the delay before attempt n is drawn from [0, min(backoffMax, backoffBase * 2^(n-2))]. */
  readonly backoffBase: Duration.Duration
  readonly backoffMax: Duration.Duration
  /** Deliveries in flight at once in this process. */
  readonly concurrency: number
  /** Deliveries in flight at once per endpoint in this process (bulkhead: a slow receiver holds at most this many). */
  readonly endpointConcurrency: number
  /**
   * Deliveries in flight at once per tenant in this process: a tenant whose receivers hang holds at most this many of
   * the `concurrency` slots, the rest stay free for the other tenants.
   */
  readonly tenantConcurrency: number
  /** How often the worker looks for due deliveries when no notification wakes it (retries, missed notifications). */
  readonly pollInterval: Duration.Duration
  /**
   * A claimed delivery is leased for `timeout` plus this margin (the SSRF guard's DNS check, recording the attempt):
   * a crashed worker's deliveries come due again this long after their send deadline.
   */
  readonly leaseMargin: Duration.Duration
  /**
   * An endpoint whose attempts have all failed for this long is disabled (reason `failing`); its pending deliveries
   * wait for it to be enabled again.
   */
  readonly disableAfter: Duration.Duration
}

/** The per-endpoint circuit breaker of the delivery worker (issue 6); defaults argued in the README. */
export interface BreakerConfig {
  /** Consecutive failed attempts (network error, timeout, 408, 429, 5xx) that open an endpoint's circuit. */
  readonly failureThreshold: number
  /** First open period; each further opening in a row doubles it, up to `openMax` (then x0.8..1.2 jitter). */
  readonly openBase: Duration.Duration
  readonly openMax: Duration.Duration
  /** Key prefix of the circuits in Redis (when `REDIS_URL` is set). */
  readonly redisPrefix: string
}

/** Idempotency keys on POST and PATCH (IETF draft-ietf-httpapi-idempotency-key-header). */
export interface IdempotencyConfig {
  /** How long a completed key (and its stored response) is remembered. */
  readonly ttl: Duration.Duration
  /** After this long an in-progress claim counts as crashed and the key can be claimed again. */
  readonly lockTimeout: Duration.Duration
  /** `Idempotency-Key` is mandatory on `POST /v1/events`. */
  readonly required: boolean
}

export type { TrustProxy } from "../src/domain/ClientIp.ts"

/** Retention (issue 21): how long events, their deliveries and attempts are kept. */
export interface RetentionConfig {
  /**
   * RETENTION (a tenant may have its own, set by the admin). Reads hide what is past it at once; the purge removes it
   * in the background; an event with a pending delivery stays until that delivery ends.
   */
  readonly keep: Duration.Duration
  /** Time between two passes of the purge (each API process runs one). */
  readonly purgeEvery: Duration.Duration
}

/** Rate limiting (IETF draft-ietf-httpapi-ratelimit-headers), on Effect's RateLimiter. */
export interface RateLimitConfig {
  readonly enabled: boolean
  /** Default quota: requests per window, per tenant (authenticated /v1) or per client IP (everything else). */
  readonly max: number
  readonly window: Duration.Duration
  /** `memory`: per process; `redis`: shared by every replica on `redisUrl`. */
  readonly store: "memory" | "redis"
  /** `REDIS_URL`, the same variable as the top-level `redisUrl` (read here too so the rate-limit settings stand alone). */
  readonly redisUrl: Option.Option<Redacted.Redacted<string>>
  /** When the store fails (Redis down): let requests through, or refuse them with 503. */
  readonly onStoreError: "allow" | "deny"
  readonly trustProxy: TrustProxy
}

/** Secrets at rest (`ENCRYPTION_KEYS`, see services/SecretBox.ts). */
export interface EncryptionConfig {
  /** The keys, the sealing one first. Redacted: never rendered or logged. */
  readonly keys: Redacted.Redacted<EncryptionKeyList>
  /** `ENCRYPTION_KEYS` was unset in development: the public development key is in use (a warning at startup). */
  readonly developmentDefault: boolean
}

/** The tenant portal (issue 23): `/portal` and its sessions. */
export interface PortalConfig {
  /** `PORTAL_SESSION_TTL`: a session's lifetime by default, and the longest a creation may ask for (`expiresIn`). */
  readonly sessionTtl: Duration.Duration
  /** `PORTAL_FRAME_ANCESTORS`: the CSP `frame-ancestors` sources of `/portal` (`'none'`: no site may embed it). */
  readonly frameAncestors: ReadonlyArray<string>
}

/**
 * Limits of the HTTP listener against slow and idle clients (issue 14); see HttpServerLive for what Node does with
 * each. Durations are whole milliseconds once applied (rounded up).
 */
export interface HttpServerConfig {
  /** From a request's first byte (from the opening, for a connection that sends nothing) to the end of its headers. */
  readonly headersTimeout: Duration.Duration
  /** From a request's first byte to the end of its body; at least `headersTimeout`. */
  readonly requestTimeout: Duration.Duration
  /** How long a connection may stay idle after a response before it is closed (Node adds 1 s of margin). */
  readonly keepAliveTimeout: Duration.Duration
  /** Open connections at most; a connection over the cap is closed as soon as it is accepted. */
  readonly maxConnections: number
}

/** The whole runtime configuration, read once at startup and validated before anything listens. */
export interface AppConfigShape {
  readonly appEnv: AppEnv
  readonly version: string
  readonly host: string
  readonly port: number
  /** None = run on the embedded PGlite database. */
  readonly databaseUrl: Option.Option<Redacted.Redacted<string>>
  /** Directory of the embedded database, or `memory://` for an in-memory one. */
  readonly pgliteDir: string
  readonly databasePoolMax: number
  readonly logLevel: LogLevel.LogLevel
  readonly logFormat: LogFormat
  /** Deadline for the whole shutdown, counted from the signal. */
  readonly shutdownTimeout: Duration.Duration
  /** How long readiness reports 503 before the listener closes, so load balancers stop routing here first. */
  readonly shutdownDelay: Duration.Duration
  readonly adminToken: Option.Option<Redacted.Redacted<string>>
  /** None = unset: any origin in development, no cross-origin access elsewhere. */
  readonly corsOrigins: Option.Option<ReadonlyArray<string>>
  /** Largest accepted request body in bytes (413 above it). */
  readonly bodyLimitBytes: number
  /** Timeouts and connection cap of the HTTP listener. */
  readonly http: HttpServerConfig
  /** Let webhook URLs reach private, loopback and link-local addresses (SSRF guard off). */
  readonly webhookAllowPrivateNetworks: boolean
  /** Ports a webhook URL may name (explicitly or by its scheme's default), whether or not private networks are allowed. */
  readonly webhookAllowedPorts: AllowedPorts
  /** One JSON access log line per request. */
  readonly accessLog: boolean
  /** Log health and metrics probes at info like other requests (otherwise at debug). */
  readonly accessLogProbes: boolean
  /** Record HTTP metrics and serve `GET /metrics`. */
  readonly metricsEnabled: boolean
  /** Serve `/metrics` on this port instead of the API port. */
  readonly metricsPort: Option.Option<number>
  readonly tracing: TracingConfig
  readonly delivery: DeliveryConfig
  /** Shared state for every replica (circuit breakers); None = per-process memory. */
  readonly redisUrl: Option.Option<Redacted.Redacted<string>>
  readonly breaker: BreakerConfig
  readonly idempotency: IdempotencyConfig
  readonly retention: RetentionConfig
  readonly rateLimit: RateLimitConfig
  readonly encryption: EncryptionConfig
  /**
   * `PUBLIC_URL`: the origin browsers reach this server at (`https://codex.example.com`), for the links it hands out
   * (portal sessions). None: the origin each request came in on (see src/http/PublicOrigin.ts).
   */
  readonly publicUrl: Option.Option<string>
  readonly portal: PortalConfig
}

export class AppConfig extends Context.Service<AppConfig, AppConfigShape>()("codex/AppConfig") {}
