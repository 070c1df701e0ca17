// @module-tag redis-server
import { randomBytes } from "node:crypto"
import { assert, it } from "@effect/vitest"
import { Context, Duration, Effect, Layer, Ref } from "effect"
import { createClient } from "redis"
import {
  closedAdmissionReuse,
  endpointCircuitsRedis,
  storeCallBudget,
  storeRetryAfter
} from "../layers/EndpointCircuitsLive.ts"
import { CircuitRejected, CircuitVerdict, EndpointCircuits } from "../services/EndpointCircuits.ts"
import { makeMetricsTest } from "./support/metricsRegistry.ts"
import { poll } from "./support/poll.ts"
import { freePort } from "./support/ports.ts"
import { throwawayRedis } from "./support/redis.ts"

/**
 * Issue 17: every attempt calls its circuit's store in Redis (admit, record). A Redis that is killed refuses at once
 * (the client fails commands while disconnected: breaker-redis-outage.test.ts); one that stalls with its connection up
 * does not answer, and each call used to wait for it without a limit, the endpoint's slot held all along. And a hot
 * endpoint's every attempt asked Redis to admit it. Circuits on a throwaway redis-server of this file's own.
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
        // The first attempt that asks the store finds out (ep_s: ep_a has just succeeded here, so its next attempts
        // skip the store for a moment): its admit gives up after the budget, and it runs unguarded (its record is not
        // even tried). Without the budget: 5 s for the admit and 5 s for the record.
        const first = yield* elapsed(attempt("ep_s", CircuitVerdict.success))
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

/** How many EVALSHA (the breaker's scripts: admit, record, state) the Redis at `url` has run. */
const scriptCalls = (url: string) =>
  Effect.promise(async () => {
    const client = createClient({ url, socket: { reconnectStrategy: false } })
    await client.connect()
    try {
      const info = await client.info("commandstats")
      return Number(/cmdstat_evalsha:calls=(\d+)/.exec(info)?.[1] ?? 0)
    } finally {
      client.destroy()
    }
  })

it.live(
  "a closed circuit's admission serves the next attempts for a moment, and its successes skip the store: trips still count",
  () =>
    Effect.gen(function* () {
      const redis = yield* throwawayRedis(yield* Effect.promise(freePort))
      const prefix = `codex:test:reuse:${randomBytes(6).toString("hex")}:`
      const options = {
        failureThreshold: 1,
        openBase: Duration.seconds(30),
        openMax: Duration.minutes(1),
        jitter: false
      }
      const replica = (reuse: Duration.Duration) => {
        const { layer } = makeMetricsTest()
        return Layer.build(
          endpointCircuitsRedis(redis.url, prefix, options, { reuse }).pipe(Layer.provide(layer))
        ).pipe(Effect.map((context) => Context.get(context, EndpointCircuits)))
      }
      // A reuse longer than the test: what is counted does not depend on the machine's speed.
      const a = yield* replica(Duration.seconds(30))
      const calls = yield* Ref.make(0)
      const attempt = (circuits: EndpointCircuits["Service"], endpointId: string, verdict: CircuitVerdict) =>
        circuits.guard(
          endpointId,
          Ref.update(calls, (n) => n + 1),
          () => verdict
        )

      const before = yield* scriptCalls(redis.url)
      for (let n = 0; n < 20; n++) yield* attempt(a, "ep_hot", CircuitVerdict.success)
      const used = (yield* scriptCalls(redis.url)) - before
      // The first success goes through the breaker; the next ones, on a circuit known closed with no failure, change
      // nothing in it and skip it (twenty-one calls before that, forty before reused admissions).
      assert.strictEqual(used, 2, "one admit and one record for twenty successes")

      // This replica's own trip is seen at once: the transition drops the kept admission.
      yield* attempt(a, "ep_hot", CircuitVerdict.failure())
      const refused = yield* attempt(a, "ep_hot", CircuitVerdict.success).pipe(Effect.flip)
      assert.instanceOf(refused, CircuitRejected)
      assert.strictEqual(yield* Ref.get(calls), 21)

      // Another replica's trip is seen once the kept admission has run out (production's 250 ms).
      const b = yield* replica(closedAdmissionReuse)
      const c = yield* replica(closedAdmissionReuse)
      yield* attempt(b, "ep_shared", CircuitVerdict.success)
      yield* attempt(c, "ep_shared", CircuitVerdict.failure())
      yield* poll(
        "replica b refused by the circuit replica c opened",
        Effect.exit(attempt(b, "ep_shared", CircuitVerdict.success)),
        (exit) => exit._tag === "Failure",
        { timeoutMs: Duration.toMillis(closedAdmissionReuse) + 5_000 }
      )
    }).pipe(Effect.scoped),
  { timeout: 60_000 }
)
