import { Context, Data, type Duration, type Effect } from "effect"

/** At most `limit` requests per `window`. */
export interface Quota {
  readonly limit: number
  readonly window: Duration.Duration
}

/** A bucket's state once a request was counted (`Allowed`) or refused (`Exceeded`, nothing counted). */
export type RateLimitVerdict =
  | { readonly _tag: "Allowed"; readonly remaining: number; readonly resetAfter: Duration.Duration }
  | { readonly _tag: "Exceeded"; readonly retryAfter: Duration.Duration }

/** The store did not answer (Redis down, or slower than the store timeout): the caller applies its store-error policy. */
export class RateLimitStoreError extends Data.TaggedError("RateLimitStoreError")<{ readonly cause: unknown }> {}

/**
 * Request quotas per key (`tenant:<id>`, `ip:<address or /56>`), on Effect's `RateLimiter` (fixed window, memory or
 * Redis store). Implementations log a store outage once per incident, not per request.
 */
export interface RateLimitShape {
  /** Counts one request against `key`'s quota, unless the quota is used up. */
  readonly consume: (key: string, quota: Quota) => Effect.Effect<RateLimitVerdict, RateLimitStoreError>
}

export class RateLimit extends Context.Service<RateLimit, RateLimitShape>()("codex/RateLimit") {}
