// @module-tag redis-server
import { randomBytes } from "node:crypto"
import { assert, it } from "@effect/vitest"
import { Context, Duration, Effect, Layer, Ref } from "effect"
import { endpointCircuitsRedis, storeCallBudget, storeRetryAfter } from "../layers/EndpointCircuitsLive.ts"
import { makeMetricsTest } from "../layers/MetricsLive.ts"
import { CircuitVerdict, EndpointCircuits } from "../services/EndpointCircuits.ts"
import { poll } from "./support/poll.ts"
import { freePort } from "./support/ports.ts"
import { throwawayRedis } from "./support/redis.ts"

/**
 * Issue 17: every attempt calls its circuit's store twice (admit, record). A Redis that is killed refuses at once (the
 * client fails commands while disconnected: breaker-redis-outage.test.ts); one that stalls with its connection up does
 * not answer, and each call used to wait for node-redis' command timeout (5 s): 10 s per attempt, the endpoint's slot
 * held all along. Circuits on a throwaway redis-server of this file's own, SIGSTOPped.
 */

const elapsed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const started = performance.now()
    const value = yield* effect
    return { value, ms: performance.now() - started }
  })

it.live(
  "a stalled Redis: an attempt waits for it at most the budget, the next ones not at all; guarded again once it answers",
  () =>
    Effect.gen(function* () {
      const redis = yield* throwawayRedis(yield* Effect.promise(freePort))
      const prefix = `codex:test:stall:${randomBytes(6).toString("hex")}:`
      const options = {
        failureThreshold: 1,
        openBase: Duration.seconds(30),
        openMax: Duration.minutes(1),
        jitter: false
      }
      const { layer } = makeMetricsTest()
      const circuits = Context.get(
        yield* Layer.build(endpointCircuitsRedis(redis.url, prefix, options).pipe(Layer.provide(layer))),
        EndpointCircuits
      )
      const calls = yield* Ref.make(0)
      const attempt = (endpointId: string, verdict: CircuitVerdict) =>
        circuits.guard(
          endpointId,
          Ref.update(calls, (n) => n + 1),
          () => verdict
        )

      // Answering: guarded as usual.
      yield* attempt("ep_a", CircuitVerdict.success)
      assert.strictEqual((yield* circuits.health("ep_a")).circuit, "closed")

      redis.pause()
      try {
        // The first attempt finds out: its admit gives up after the budget, and it runs unguarded (its record is not
        // even tried). Without the budget: 5 s for the admit and 5 s for the record.
        const first = yield* elapsed(attempt("ep_a", CircuitVerdict.success))
        const budget = Duration.toMillis(storeCallBudget)
        assert.isAtLeast(first.ms, budget - 50, "it waited for the store (the budget)")
        assert.isBelow(first.ms, budget + 2_000, `waited ${Math.round(first.ms)} ms for a stalled store`)
        // The next ones, on any endpoint, do not wait for it at all while the store is left alone.
        for (const endpointId of ["ep_a", "ep_b", "ep_c"]) {
          const next = yield* elapsed(attempt(endpointId, CircuitVerdict.failure()))
          assert.isBelow(next.ms, 500, `an attempt after the store stalled waited ${Math.round(next.ms)} ms`)
        }
        const health = yield* elapsed(circuits.health("ep_b"))
        assert.strictEqual(health.value.circuit, "unknown")
        assert.isBelow(health.ms, 500, "a health read does not wait for the stalled store either")
        assert.strictEqual(yield* Ref.get(calls), 5, "every attempt ran (fail open)")
      } finally {
        redis.resume()
      }

      // Redis answers again: once the store is tried again (after storeRetryAfter), a failure opens the circuit in it.
      yield* poll(
        "a failure recorded in Redis again (the circuit opens)",
        Effect.gen(function* () {
          yield* attempt("ep_d", CircuitVerdict.failure()).pipe(Effect.ignore)
          return (yield* circuits.health("ep_d")).circuit
        }),
        (circuit) => circuit === "open",
        { timeoutMs: Duration.toMillis(storeRetryAfter) + 10_000 }
      )
    }).pipe(Effect.scoped),
  { timeout: 60_000 }
)
