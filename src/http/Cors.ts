import { Option } from "effect"
import type { AppEnv } from "../../services/AppConfig.ts"

const allowedMethods = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
const allowedRequestHeaders =
  "Authorization, Content-Type, Idempotency-Key, X-Request-Id, traceparent, tracestate, Codex-Tenant"
const exposedHeaders = "X-Request-Id, RateLimit, RateLimit-Policy, Retry-After, Idempotent-Replayed, Deprecation"
const preflightMaxAgeSeconds = "600"

export interface CorsPolicy {
  /** The CORS headers for a request from `origin`, or none at all when that origin is not allowed. */
  readonly responseHeaders: (origin: string | undefined) => Readonly<Record<string, string>> | undefined
  /** The headers of a 204 answer to a preflight from `origin`; `undefined` when the origin is not allowed. */
  readonly preflightHeaders: (origin: string | undefined) => Readonly<Record<string, string>> | undefined
}

/**
 * Environment-specific CORS. `CORS_ORIGINS` is an allowlist of exact origins. Unset in development means any origin
 * (echoed back, never `*`, so credentials keep working); unset elsewhere means no cross-origin access. An origin not
 * allowed gets no CORS headers at all, which browsers treat as a refusal.
 */
export const makeCorsPolicy = (appEnv: AppEnv, origins: Option.Option<ReadonlyArray<string>>): CorsPolicy => {
  const allowList = new Set(Option.getOrElse(origins, () => []))
  const anyOrigin = appEnv === "development" && Option.isNone(origins)
  const isAllowed = (origin: string | undefined): origin is string =>
    origin !== undefined && (anyOrigin || allowList.has(origin))

  const responseHeaders = (origin: string | undefined) =>
    isAllowed(origin)
      ? {
          "access-control-allow-origin": origin,
          "access-control-allow-credentials": "true",
          "access-control-expose-headers": exposedHeaders,
          vary: "Origin"
        }
      : undefined

  const preflightHeaders = (origin: string | undefined) =>
    isAllowed(origin)
      ? {
          "access-control-allow-origin": origin,
          "access-control-allow-credentials": "true",
          "access-control-allow-methods": allowedMethods,
          "access-control-allow-headers": allowedRequestHeaders,
          "access-control-max-age": preflightMaxAgeSeconds,
          vary: "Origin"
        }
      : undefined

  return { responseHeaders, preflightHeaders }
}
