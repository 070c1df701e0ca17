import type * as NodeRedis from "@effect/platform-node/NodeRedis"
import { Duration, Effect, Layer, Redacted, References } from "effect"
import * as RateLimiter from "effect/persistence/RateLimiter"
import type * as Redis from "effect/persistence/Redis"
import { AppConfig, type AppEnv, type RateLimitConfig } from "../services/AppConfig.ts"
import { RateLimit, RateLimitStoreError, type RateLimitVerdict } from "../services/RateLimit.ts"
import { developmentRateLimitMax, productRateLimitMax } from "./AppConfigLive.ts"
import { RateLimitMemoryStore } from "./RateLimitMemoryStore.ts"

/**
 * A store slower than this counts as down: a rate-limit check must never hold a request for long. (The Redis client
 * fails commands at once while disconnected; this bounds a Redis that accepts connections but does not answer.)
 */
export const storeTimeout = Duration.seconds(1)

/** Every key in Redis starts with this: `codex:ratelimit:tenant:<id>`, `codex:ratelimit:ip:<address or /56>`. */
export const redisKeyPrefix = "codex:ratelimit:"

/** `message <- cause message`: the store's own error usually wraps the Redis client's. */
const describe = (error: unknown): string => {
  const parts: Array<string> = []
  for (let current = error, depth = 0; current instanceof Error && depth < 3; current = current.cause, depth++) {
    parts.push(current.message)
  }
  return parts.length > 0 ? parts.join(" <- ") : String(error)
}

/**
 * The service over `RateLimiter` (fixed window: one counter per key whose TTL grows by window/limit per request,
 * kept atomically by the store). Store failures are logged when an incident starts and when it ends, not per request.
 */
export const makeRateLimit = Effect.fnUntraced(function* (options: { readonly timeout: boolean }) {
  const limiter = yield* RateLimiter.RateLimiter
  const config = yield* AppConfig
  const policy = config.rateLimit.onStoreError
  let failing = false

  const storeFailed = (cause: unknown) =>
    Effect.suspend(() => {
      const error = new RateLimitStoreError({ cause })
      if (failing) return Effect.fail(error)
      failing = true
      return Effect.logWarning(
        `rate-limit store unavailable: requests are ${policy === "allow" ? "allowed unlimited" : "refused (503)"} until it answers again (RATE_LIMIT_ON_STORE_ERROR=${policy})`
      ).pipe(Effect.annotateLogs({ error: describe(cause) }), Effect.andThen(Effect.fail(error)))
    })

  const recovered = Effect.suspend(() => {
    if (!failing) return Effect.void
    failing = false
    return Effect.logInfo("rate-limit store answers again")
  })

  const timeoutError = () => Effect.fail(new Error(`no answer within ${Duration.format(storeTimeout)}`))

  return RateLimit.of({
    consume: (key, quota) => {
      const consumed = limiter.consume({ key, limit: quota.limit, window: quota.window })
      // Only a remote store can hang; the memory store answers synchronously (and a timer per request is not free).
      const bounded = options.timeout
        ? Effect.timeoutOrElse(consumed, { duration: storeTimeout, orElse: timeoutError })
        : consumed
      return Effect.matchEffect(bounded, {
        onSuccess: (result): Effect.Effect<RateLimitVerdict> => {
          const verdict: RateLimitVerdict = {
            _tag: "Allowed",
            remaining: result.remaining,
            resetAfter: result.resetAfter
          }
          return failing ? Effect.as(recovered, verdict) : Effect.succeed(verdict)
        },
        onFailure: (error) =>
          error instanceof RateLimiter.RateLimiterError && error.reason._tag === "RateLimitExceeded"
            ? Effect.succeed<RateLimitVerdict>({ _tag: "Exceeded", retryAfter: error.reason.retryAfter })
            : storeFailed(error)
      })
    }
  })
})

const fromLimiter = (options: {
  readonly timeout: boolean
}): Layer.Layer<RateLimit, never, RateLimiter.RateLimiter | AppConfig> =>
  Layer.effect(RateLimit, makeRateLimit(options))

/**
 * Counters in this process, dropped once their window has passed (they follow the Effect Clock, so TestClock drives
 * them in tests).
 */
export const RateLimitMemory: Layer.Layer<RateLimit, never, AppConfig> = fromLimiter({ timeout: false }).pipe(
  Layer.provide(RateLimiter.layer.pipe(Layer.provide(RateLimitMemoryStore)))
)

/**
 * Counters in Redis, shared by every replica (Lua scripts, so each check is one atomic round trip). The connection is
 * made at startup: an unreachable Redis stops the process like an unreachable database. Later outages go through
 * RATE_LIMIT_ON_STORE_ERROR; while disconnected, commands fail at once instead of queueing.
 */
export const RateLimitRedis = (
  url: string,
  nodeRedis: typeof NodeRedis
): Layer.Layer<RateLimit, Redis.RedisError, AppConfig> =>
  fromLimiter({ timeout: true }).pipe(
    Layer.provide(RateLimiter.layer),
    Layer.provide(RateLimiter.layerStoreRedis({ prefix: redisKeyPrefix })),
    Layer.provide(
      nodeRedis.layer({ url, disableOfflineQueue: true, socket: { connectTimeout: 2000 } }).pipe(
        // The client logs every failed reconnection attempt; the outage is logged once by makeRateLimit instead.
        Layer.provide(Layer.succeed(References.MinimumLogLevel, "None"))
      )
    )
  )

/**
 * One line at startup with the default quota in use, so nobody mistakes the development quota for the product's (or
 * wonders where their 429s come from).
 */
const logQuota = (appEnv: AppEnv, rateLimit: RateLimitConfig): Effect.Effect<void> => {
  if (!rateLimit.enabled) return Effect.logInfo("rate limiting is off (RATE_LIMIT_ENABLED=false)")
  const quota = `${rateLimit.max} requests per ${Duration.format(rateLimit.window)}`
  const note =
    appEnv === "development" && rateLimit.max === developmentRateLimitMax
      ? ` (the development default; staging and production default to ${productRateLimitMax})`
      : ""
  return Effect.logInfo(`rate limiting: ${quota} per tenant or client IP${note}`).pipe(
    Effect.annotateLogs({
      rateLimitMax: rateLimit.max,
      rateLimitWindowSeconds: Duration.toSeconds(rateLimit.window),
      rateLimitStore: rateLimit.store
    })
  )
}

/**
 * RATE_LIMIT_STORE picks the store (nothing connects to Redis while rate limiting is off). The Redis client is
 * loaded only when used: importing it costs ~0.3 s of startup.
 */
export const RateLimitLive: Layer.Layer<RateLimit, Redis.RedisError, AppConfig> = Layer.unwrap(
  Effect.gen(function* () {
    const { appEnv, rateLimit } = yield* AppConfig
    yield* logQuota(appEnv, rateLimit)
    if (!rateLimit.enabled || rateLimit.store === "memory" || rateLimit.redisUrl._tag === "None") {
      return RateLimitMemory
    }
    const nodeRedis = yield* Effect.promise(() => import("@effect/platform-node/NodeRedis"))
    return RateLimitRedis(Redacted.value(rateLimit.redisUrl.value), nodeRedis)
  })
)
