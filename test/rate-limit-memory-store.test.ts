import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Random } from "effect"
import * as RateLimiter from "effect/persistence/RateLimiter"
import { TestClock } from "effect/testing"
import { makeMemoryStore } from "../layers/RateLimitMemoryStore.ts"

const window = Duration.seconds(60)
/** A quota of 100 per minute (600 ms per request): a capped counter's window lasts the minute from its first request. */
const perRequest = { tokens: 1, refillRate: Duration.millis(600), limit: 100 }

const withStores = Effect.gen(function* () {
  const reference = yield* RateLimiter.RateLimiterStore
  const ours = yield* makeMemoryStore
  return { reference, ...ours }
}).pipe(Effect.provide(RateLimiter.layerStoreMemory))

describe("the memory rate-limit store", () => {
  it.effect("counts exactly like Effect's memory store (same answers over a random run)", () =>
    Effect.gen(function* () {
      const { reference, store } = yield* withStores
      for (let step = 0; step < 3000; step++) {
        const key = `ip:10.0.0.${yield* Random.nextIntBetween(0, 20)}`
        const tokens = yield* Random.nextIntBetween(1, 3)
        const options = { ...perRequest, key, tokens }
        assert.deepStrictEqual(yield* store.fixedWindow(options), yield* reference.fixedWindow(options))
        yield* TestClock.adjust(Duration.millis(yield* Random.nextIntBetween(0, 400)))
      }
    }).pipe(Random.withSeed("codex"))
  )

  it.effect("drops counters whose window has passed, so one-off clients do not pile up", () =>
    Effect.gen(function* () {
      const { store, counters } = yield* withStores
      for (let i = 0; i < 5000; i++) yield* store.fixedWindow({ ...perRequest, key: `ip:one-off-${i}` })
      assert.strictEqual(counters.size(), 5000)
      // Every one of them had a single request: its window has passed a minute later.
      yield* TestClock.adjust(window)
      for (let i = 0; i < 5000; i++) yield* store.fixedWindow({ ...perRequest, key: `ip:next-${i}` })
      assert.isAtMost(counters.size(), 5000)
      // A client still inside its window keeps its count through the sweeps of one-off clients around it.
      const steady = { ...perRequest, key: "tenant:steady" }
      for (let i = 0; i < 100; i++) yield* store.fixedWindow(steady)
      for (let batch = 0; batch < 10; batch++) {
        yield* TestClock.adjust(Duration.seconds(5))
        for (let i = 0; i < 1000; i++) yield* store.fixedWindow({ ...perRequest, key: `ip:near-${batch}-${i}` })
      }
      const [count] = yield* store.fixedWindow(steady)
      assert.strictEqual(count, 101, "over the limit: the steady client's count survived the sweeps")
      // However many one-off clients pass, the map holds about the keys of one window.
      for (let batch = 0; batch < 10; batch++) {
        yield* TestClock.adjust(window)
        for (let i = 0; i < 5000; i++) yield* store.fixedWindow({ ...perRequest, key: `ip:batch-${batch}-${i}` })
      }
      assert.isAtMost(counters.size(), 2 * 5000)
    })
  )
})
