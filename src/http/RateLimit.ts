import { Clock, Context, Duration, Effect, Option } from "effect"
import { HttpEffect, HttpRouter, HttpServerRequest, HttpServerResponse, ProblemDetails } from "effect/http"
import * as FindMyWay from "effect/http/FindMyWay"
import { ApiKeyAuth } from "../../services/ApiKeyAuth.ts"
import { AppConfig } from "../../services/AppConfig.ts"
import { Metrics, type RateLimitPolicy } from "../../services/Metrics.ts"
import { type Quota, RateLimit } from "../../services/RateLimit.ts"
import { compileTrust, ipBucket, resolveClientIp } from "../domain/ClientIp.ts"
import { makeAdminTokenCheck, tenantHeader } from "./AdminToken.ts"

/** Probes and scrapes are never limited: an orchestrator must always reach them. */
export const rateLimitExempt: ReadonlyArray<"/livez" | "/readyz" | "/healthz" | "/metrics"> = [
  "/livez",
  "/readyz",
  "/healthz",
  "/metrics"
]

/** Which policy a request falls under, before it is routed. */
type RoutePolicy = "tenant" | "exempt"

/**
 * Classifies a request URL by the route that will serve it, not by its raw spelling: the router matches paths case
 * insensitively, percent-decodes them and ignores doubled and trailing slashes, so `/V1/events`, `//v1/events` and
 * `/%761/events` all reach `GET /v1/events`. The classifier is a router of the same kind with the same configuration,
 * so it reads every URL exactly as the real one will: whatever reaches a tenant route counts against the tenant.
 */
export const makeRouteClassifier = (config: Partial<FindMyWay.RouterConfig>) => {
  const router = FindMyWay.make<RoutePolicy>(config)
  router.all("/v1", "tenant")
  router.all("/v1/*", "tenant")
  for (const path of rateLimitExempt) router.all(path, "exempt")
  // The portal's files: served from memory and cached by browsers for a year; a page view must not spend a quota.
  router.all("/portal/assets/*", "exempt")
  return (url: string): RoutePolicy | undefined => router.find("GET", url)?.handler
}

/** Problem types registered by draft-ietf-httpapi-ratelimit-headers (§ IANA, HTTP Problem Types). */
export const quotaExceededType = "https://iana.org/assignments/http-problem-types#quota-exceeded"
export const reducedCapacityType = "https://iana.org/assignments/http-problem-types#temporary-reduced-capacity"

/** Whole seconds, rounded up: a client waiting this long is never early. */
const seconds = (duration: Duration.Duration): number => Math.max(0, Math.ceil(Duration.toMillis(duration) / 1000))

/** `RateLimit-Policy: "tenant";q=100;w=900` (draft -10: a List of policy items; q = quota, w = window seconds). */
export const policyHeader = (policy: RateLimitPolicy, quota: Quota): string =>
  `"${policy}";q=${quota.limit};w=${seconds(quota.window)}`

/** `RateLimit: "tenant";r=42;t=513` (r = remaining quota, t = seconds until the quota is restored). */
export const stateHeader = (policy: RateLimitPolicy, remaining: number, resetSeconds: number): string =>
  `"${policy}";r=${Math.max(0, Math.floor(remaining))};t=${resetSeconds}`

/** A store outage under RATE_LIMIT_ON_STORE_ERROR=deny: clients retry after this many seconds. */
const storeDownRetryAfter = 5

/** Whose bucket a request counts against, and its quota. */
interface Subject {
  readonly policy: RateLimitPolicy
  readonly key: string
  readonly quota: Quota
}

/** The credential of `Authorization: Bearer <key>` (scheme case-insensitive, as the API's own security reads it). */
const bearerOf = (authorization: string | undefined): string | undefined => {
  if (authorization === undefined || authorization.length < 8) return undefined
  if (authorization.slice(0, 7).toLowerCase() !== "bearer ") return undefined
  const key = authorization.slice(7).replace(/^ +/, "")
  return key.length === 0 ? undefined : key
}

/**
 * Rate limiting, as a global middleware registered INSIDE the edge middleware (see Routes.ts): a 429 it answers is
 * still finished by the edge (request id, security headers, access log, metrics). It runs before routing, so every
 * request counts — unknown routes and malformed bodies too.
 *
 * Policies: `/v1` with a valid API key → the tenant's quota (its own, or the default), keyed by tenant; everything
 * else (`/admin`, `/docs`, unauthenticated or bad keys) → the default quota per client IP (IPv6 per /56), the IP
 * resolved by TRUST_PROXY. Probes are exempt. Which route a request reaches is read as the router reads it
 * (`makeRouteClassifier`), whatever its spelling. The key lookup is the API key cache TenantAuth uses next, so it costs
 * no extra query; while the client's address is over its quota, only keys already known valid are looked up.
 *
 * Every limited response carries `RateLimit-Policy` and `RateLimit` (added by a pre-response handler, so error
 * responses of the router get them too); a refused one is a 429 problem with `Retry-After`. When the store fails,
 * RATE_LIMIT_ON_STORE_ERROR decides: `allow` serves the request (with `RateLimit-Policy` only: there is no count to
 * report), `deny` answers 503 with `Retry-After`.
 */
export const RateLimitMiddleware = HttpRouter.middleware(
  Effect.gen(function* () {
    const config = yield* AppConfig
    const limits = yield* RateLimit
    const keys = yield* ApiKeyAuth
    const classify = makeRouteClassifier(yield* HttpRouter.RouterConfig)
    const isAdminToken = makeAdminTokenCheck(config)
    const metrics = config.metricsEnabled ? yield* Metrics : undefined
    const settings = config.rateLimit
    const trust = compileTrust(settings.trustProxy)
    const defaultQuota: Quota = { limit: settings.max, window: settings.window }

    const tooManyRequests = (quota: Quota, retryAfter: number) =>
      HttpServerResponse.jsonUnsafe(
        {
          type: quotaExceededType,
          title: "Request cannot be satisfied as assigned quota has been exceeded",
          status: 429,
          detail: `The quota of ${quota.limit} requests per ${seconds(quota.window)} seconds is used up; retry in ${retryAfter} seconds.`
        },
        {
          status: 429,
          contentType: ProblemDetails.contentType,
          headers: { "retry-after": String(retryAfter) }
        }
      )

    const storeUnavailable = HttpServerResponse.jsonUnsafe(
      {
        type: reducedCapacityType,
        title: "Request cannot be satisfied due to temporary server capacity constraints",
        status: 503,
        detail: `The rate limiter cannot check the quota right now; retry in ${storeDownRetryAfter} seconds.`
      },
      {
        status: 503,
        contentType: ProblemDetails.contentType,
        headers: { "retry-after": String(storeDownRetryAfter) }
      }
    )

    /** Whose quota: the client IP's (unauthenticated, /admin, everything outside /v1). */
    const ipSubject = (request: HttpServerRequest.HttpServerRequest): Subject => {
      const ip = resolveClientIp(
        Option.getOrUndefined(request.remoteAddress),
        request.headers["x-forwarded-for"],
        trust
      )
      return { policy: "ip", key: `ip:${ip === undefined ? "unknown" : ipBucket(ip)}`, quota: defaultQuota }
    }

    /**
     * Client addresses refused on their quota, and until when (epoch ms, this process's view). While an address is
     * refused, an API key this process has not seen valid costs no database lookup: it would only be counted against
     * the same exhausted quota (a flood of made-up keys must not turn into a flood of queries).
     */
    const refusedAddresses = new Map<string, number>()
    const noteRefused = (key: string, retryAfter: Duration.Duration, now: number) => {
      if (refusedAddresses.size >= 10_000) {
        for (const [address, until] of refusedAddresses) if (until <= now) refusedAddresses.delete(address)
        if (refusedAddresses.size >= 10_000) refusedAddresses.clear()
      }
      refusedAddresses.set(key, now + Duration.toMillis(retryAfter))
    }

    if (!settings.enabled) return (httpEffect) => httpEffect

    // The per-request path is plain combinators, no generators: it runs on every request.
    return (httpEffect) =>
      Effect.withFiber((fiber) => {
        const request = Context.getUnsafe(fiber.context, HttpServerRequest.HttpServerRequest)
        const policy = classify(request.url)
        if (policy === "exempt") return httpEffect
        const clock = fiber.getRef(Clock.Clock)

        const limit = (subject: Subject) => {
          const policyValue = policyHeader(subject.policy, subject.quota)
          return Effect.flatMap(limits.consume(subject.key, subject.quota), (verdict) => {
            if (verdict._tag === "Exceeded") {
              metrics?.rateLimitDecision(subject.policy, "limited")
              if (subject.policy === "ip") noteRefused(subject.key, verdict.retryAfter, clock.currentTimeMillisUnsafe())
              const retryAfter = Math.max(1, seconds(verdict.retryAfter))
              return Effect.succeed(
                HttpServerResponse.setHeaders(tooManyRequests(subject.quota, retryAfter), {
                  "ratelimit-policy": policyValue,
                  ratelimit: stateHeader(subject.policy, 0, retryAfter)
                })
              )
            }
            metrics?.rateLimitDecision(subject.policy, "allowed")
            const headers = {
              "ratelimit-policy": policyValue,
              ratelimit: stateHeader(subject.policy, verdict.remaining, seconds(verdict.resetAfter))
            }
            // Also on responses that come back on the error channel (400 decode errors, unknown routes).
            HttpEffect.appendPreResponseHandlerUnsafe(fiber.context, (_req, res) =>
              Effect.succeed(HttpServerResponse.setHeaders(res, headers))
            )
            return httpEffect
          }).pipe(
            Effect.catchTag("RateLimitStoreError", () => {
              metrics?.rateLimitDecision(subject.policy, "store_error")
              if (settings.onStoreError === "deny") {
                return Effect.succeed(HttpServerResponse.setHeader(storeUnavailable, "ratelimit-policy", policyValue))
              }
              const headers = { "ratelimit-policy": policyValue }
              HttpEffect.appendPreResponseHandlerUnsafe(fiber.context, (_req, res) =>
                Effect.succeed(HttpServerResponse.setHeaders(res, headers))
              )
              return httpEffect
            })
          )
        }

        // A valid key on /v1 (or the admin token acting as a tenant): the tenant's quota (its own, or the default);
        // anything else: the client IP's.
        const key = policy === "tenant" ? bearerOf(request.headers.authorization) : undefined
        const ip = ipSubject(request)
        if (key === undefined) return limit(ip)
        const refusedUntil = refusedAddresses.get(ip.key)
        const refused = refusedUntil !== undefined && refusedUntil > clock.currentTimeMillisUnsafe()
        const actingAs = request.headers[tenantHeader]
        // An operator acting as a tenant counts against that tenant's quota, as the tenant's own keys do.
        const owner =
          actingAs !== undefined && actingAs !== "" && isAdminToken(key)
            ? keys.operatorTenant(actingAs)
            : refused
              ? keys.authenticateIfKnown(key)
              : keys.authenticate(key)
        return Effect.flatMap(owner, (owner) =>
          limit(
            Option.isSome(owner)
              ? {
                  policy: "tenant",
                  key: `tenant:${owner.value.tenantId}`,
                  quota: owner.value.rateLimit ?? defaultQuota
                }
              : ip
          )
        )
      })
  }),
  { global: true }
)
