import { Duration, Effect, Layer } from "effect"
import * as RateLimiter from "effect/persistence/RateLimiter"

interface Counter {
  count: number
  /** Epoch ms when the counter is back to zero. */
  expiresAt: number
}

/** What the memory store holds, for tests: how many keys it keeps counters for. */
export interface MemoryCounters {
  readonly size: () => number
}

/** Below this many keys the store never sweeps: a sweep would cost more than the memory it frees. */
const sweepFloor = 1024

/**
 * An in-process `RateLimiterStore` whose fixed-window counters are dropped once their window has passed. Effect's
 * `layerStoreMemory` keeps a counter for every key it ever saw, so a server on the internet would grow by one entry per
 * client address, forever. Same arithmetic as Effect's store (since 4.1.5: a capped counter's window opens at its first
 * admission and lasts the whole window; uncapped, its TTL grows by window/limit per request), on the Effect Clock, so
 * TestClock drives it. Expired counters are swept when the map has doubled since the
 * last sweep: amortized O(1) per request, and the map never holds more than twice the keys active in one window (plus
 * the floor). Token buckets and the adaptive limiter, which codex-api does not use, are Effect's own.
 */
export const makeMemoryStore = Effect.gen(function* () {
  const inner = yield* RateLimiter.RateLimiterStore
  const counters = new Map<string, Counter>()
  let sweepAt = sweepFloor

  const sweep = (now: number) => {
    for (const [key, counter] of counters) if (counter.expiresAt <= now) counters.delete(key)
    sweepAt = Math.max(sweepFloor, counters.size * 2)
  }

  const store = RateLimiter.RateLimiterStore.of({
    ...inner,
    fixedWindow: (options) =>
      Effect.clockWith((clock) =>
        Effect.sync(() => {
          const now = clock.currentTimeMillisUnsafe()
          let counter = counters.get(options.key)
          if (counter === undefined || counter.expiresAt <= now) {
            if (counters.size >= sweepAt) sweep(now)
            counter = { count: 0, expiresAt: now }
            counters.set(options.key, counter)
          }
          if (options.limit !== undefined && counter.count + options.tokens > options.limit) {
            return [counter.count + options.tokens, counter.expiresAt - now] as const
          }
          counter.count += options.tokens
          const refillMillis = Duration.toMillis(options.refillRate)
          if (options.limit === undefined) {
            counter.expiresAt += refillMillis * options.tokens
          } else if (counter.expiresAt === now && options.tokens > 0) {
            // A capped window opens at its first admission and lasts the whole window (window/limit × limit).
            counter.expiresAt = now + refillMillis * options.limit
          }
          return [counter.count, counter.expiresAt - now] as const
        })
      )
  })
  return { store, counters: { size: () => counters.size } satisfies MemoryCounters }
})

/** The store, on top of Effect's memory store (for the algorithms it does not replace). */
export const RateLimitMemoryStore: Layer.Layer<RateLimiter.RateLimiterStore> = Layer.effect(
  RateLimiter.RateLimiterStore,
  Effect.map(makeMemoryStore, ({ store }) => store)
).pipe(Layer.provide(RateLimiter.layerStoreMemory))
