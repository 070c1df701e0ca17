import { randomBytes } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Duration, Effect, Exit, Fiber, Layer, Option, Redacted, Ref, Schedule } from "effect"
import { CircuitBreaker } from "effect/persistence"
import { TestClock } from "effect/testing"
import {
  closedAdmissionReuse,
  EndpointCircuitsLive,
  endpointCircuitsRedis,
  makeEndpointCircuits
} from "../layers/EndpointCircuitsLive.ts"
import { CircuitRejected, CircuitVerdict, EndpointCircuits } from "../services/EndpointCircuits.ts"
import { openSchedule } from "../src/domain/CircuitPolicy.ts"
import { appConfigTest } from "./support/appConfig.ts"
import { endpointCircuitsTest } from "./support/circuits.ts"
import { gaugeOf, readRegistry, seriesValue } from "./support/metrics.ts"
import { makeMetricsTest } from "./support/metricsRegistry.ts"

/**
 * The endpoints' circuit breaker through OUR contract (services/EndpointCircuits.ts), on Effect's CircuitBreaker:
 * every transition under a TestClock on the memory store, the open-period schedule, and two instances sharing one
 * circuit through the real Redis on 127.0.0.1:6379.
 */

const policy = { failureThreshold: 3, openBase: Duration.seconds(10), openMax: Duration.seconds(60) }

/** Guards the circuits of one test, with the metrics registry they report to. */
const withCircuits = <A, E>(body: Effect.Effect<A, E, EndpointCircuits>) => {
  const { metrics, layer } = makeMetricsTest()
  return {
    metrics,
    run: body.pipe(Effect.provide(endpointCircuitsTest(policy).pipe(Layer.provide(layer))))
  }
}

/** One attempt through the circuit that counts calls and reports `verdict`. */
const attempt = (endpointId: string, calls: Ref.Ref<number>, verdict: CircuitVerdict) =>
  Effect.gen(function* () {
    const circuits = yield* EndpointCircuits
    return yield* circuits.guard(
      endpointId,
      Ref.update(calls, (n) => n + 1),
      () => verdict
    )
  })

const rejection = <A, E>(effect: Effect.Effect<A, E, EndpointCircuits>) =>
  effect.pipe(
    Effect.flip,
    Effect.map((e) => (e instanceof CircuitRejected ? e : undefined))
  )

/** The transitions are reported by a forked fiber: let it run (no clock involved). */
const settle = Effect.gen(function* () {
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow
})

type TestMetrics = ReturnType<typeof makeMetricsTest>["metrics"]

/** How often the circuits went from `from` to `to` (0 before the first time). */
const transitionCount = async (metrics: TestMetrics, from: string, to: string) =>
  seriesValue(await readRegistry(metrics.registry), "circuit_breaker_transitions_total", { from, to }) ?? 0

/** `circuit_breakers_open`. */
const gauge = async (metrics: TestMetrics) => gaugeOf(await readRegistry(metrics.registry), "circuit_breakers_open")

describe("endpoint circuits (TestClock, memory store)", () => {
  it.effect(
    "a closed circuit's successes skip the store for a moment; a failure among them is recorded at once and counts",
    () => {
      const counted = { admit: 0, record: 0 }
      const countingStore = Layer.effect(
        CircuitBreaker.CircuitBreakerStore,
        Effect.map(Effect.service(CircuitBreaker.CircuitBreakerStore), (store) => ({
          admit: (key: string) =>
            Effect.suspend(() => {
              counted.admit++
              return store.admit(key)
            }),
          record: (options: Parameters<typeof store.record>[0]) =>
            Effect.suspend(() => {
              counted.record++
              return store.record(options)
            }),
          state: store.state
        }))
      ).pipe(Layer.provide(CircuitBreaker.layerStoreMemory()))
      const { layer: metricsLayer } = makeMetricsTest()
      const circuitsLayer = Layer.effect(EndpointCircuits, makeEndpointCircuits({ ...policy, jitter: false })).pipe(
        Layer.provide(countingStore),
        Layer.provide(metricsLayer)
      )
      return Effect.gen(function* () {
        const circuits = yield* EndpointCircuits
        const calls = yield* Ref.make(0)
        const failure = CircuitVerdict.failure()
        const storeCalls = () => ({ ...counted })

        yield* attempt("ep_h", calls, CircuitVerdict.success)
        assert.deepStrictEqual(storeCalls(), { admit: 1, record: 1 }, "the first success goes through the breaker")
        for (let n = 0; n < 9; n++) yield* attempt("ep_h", calls, CircuitVerdict.success)
        assert.deepStrictEqual(storeCalls(), { admit: 1, record: 1 }, "the next ones, within the moment, skip it")

        // The moment (closedAdmissionReuse) over, the next success goes through the breaker again, and starts another.
        yield* TestClock.adjust(Duration.sum(closedAdmissionReuse, Duration.millis(1)))
        yield* attempt("ep_h", calls, CircuitVerdict.success)
        assert.deepStrictEqual(storeCalls(), { admit: 2, record: 2 })

        // A failure among skipped successes is recorded at once; the streak then counts as ever: 3 open the circuit.
        yield* attempt("ep_h", calls, failure)
        assert.deepStrictEqual(storeCalls(), { admit: 3, record: 3 }, "the failure recorded")
        yield* attempt("ep_h", calls, failure)
        assert.strictEqual((yield* circuits.health("ep_h")).circuit, "closed")
        yield* attempt("ep_h", calls, failure)
        assert.strictEqual((yield* circuits.health("ep_h")).circuit, "open")
        const refused = yield* rejection(attempt("ep_h", calls, CircuitVerdict.success))
        assert.strictEqual(refused?.circuit, "open")
        assert.strictEqual(yield* Ref.get(calls), 14, "every attempt but the refused one ran")
      }).pipe(Effect.provide(circuitsLayer))
    }
  )

  it.effect("closed → open after 3 consecutive failures; open refuses without running, for the open period", () => {
    const { metrics, run } = withCircuits(
      Effect.gen(function* () {
        const circuits = yield* EndpointCircuits
        const calls = yield* Ref.make(0)
        const failure = CircuitVerdict.failure()
        assert.deepStrictEqual(yield* circuits.health("ep_a"), { circuit: "closed", openUntil: null })

        // A success in between resets the streak; an ignored attempt neither counts nor resets.
        yield* attempt("ep_a", calls, failure)
        yield* attempt("ep_a", calls, failure)
        yield* attempt("ep_a", calls, CircuitVerdict.success)
        yield* attempt("ep_a", calls, failure)
        yield* attempt("ep_a", calls, CircuitVerdict.ignored)
        yield* attempt("ep_a", calls, failure)
        assert.strictEqual((yield* circuits.health("ep_a")).circuit, "closed")
        yield* attempt("ep_a", calls, failure)
        assert.strictEqual(yield* Ref.get(calls), 7)

        const health = yield* circuits.health("ep_a")
        assert.strictEqual(health.circuit, "open")
        assert.strictEqual(health.openUntil?.getTime(), 10_000, "TestClock starts at 0; open for the base period")
        const refused = yield* rejection(attempt("ep_a", calls, CircuitVerdict.success))
        assert.strictEqual(refused?.circuit, "open")
        assert.strictEqual(Duration.toMillis(refused?.retryAfter ?? Duration.zero), 10_000)
        assert.strictEqual(yield* Ref.get(calls), 7, "an open circuit does not run the attempt")

        // Other endpoints are not affected.
        yield* attempt("ep_b", calls, CircuitVerdict.success)
        assert.strictEqual((yield* circuits.health("ep_b")).circuit, "closed")

        // Still open 1 ms before the end, with the rest of the period as retryAfter.
        yield* TestClock.adjust(Duration.millis(9_999))
        const late = yield* rejection(attempt("ep_a", calls, CircuitVerdict.success))
        assert.strictEqual(Duration.toMillis(late?.retryAfter ?? Duration.zero), 1)
        yield* settle
      })
    )
    return run.pipe(
      Effect.andThen(
        Effect.promise(async () => {
          assert.strictEqual(await transitionCount(metrics, "closed", "open"), 1)
          assert.strictEqual(await gauge(metrics), 1, "one circuit open")
        })
      )
    )
  })

  it.effect("open → half-open (one probe at a time) → closed; half-open → open with a doubled, capped period", () => {
    const { metrics, run } = withCircuits(
      Effect.gen(function* () {
        const circuits = yield* EndpointCircuits
        const calls = yield* Ref.make(0)
        const trip = Effect.forEach([1, 2, 3], () => attempt("ep_c", calls, CircuitVerdict.failure()), {
          discard: true
        })
        yield* trip
        yield* TestClock.adjust(Duration.seconds(10))
        // Past its period the circuit lets the next attempt through as the probe: shown as half-open.
        assert.deepStrictEqual(yield* circuits.health("ep_c"), { circuit: "half_open", openUntil: null })

        // The probe runs (held open here); a second attempt meanwhile is refused as half-open.
        const release = yield* Deferred.make<void>()
        const probe = yield* circuits
          .guard("ep_c", Deferred.await(release), () => CircuitVerdict.success)
          .pipe(Effect.forkChild({ startImmediately: true }))
        yield* settle
        assert.strictEqual((yield* circuits.health("ep_c")).circuit, "half_open")
        const during = yield* rejection(attempt("ep_c", calls, CircuitVerdict.success))
        assert.strictEqual(during?.circuit, "half_open")
        yield* Deferred.succeed(release, undefined)
        assert.isTrue(Exit.isSuccess(yield* Fiber.await(probe)))
        assert.deepStrictEqual(yield* circuits.health("ep_c"), { circuit: "closed", openUntil: null })

        // Tripped again soon after: the backoff count survived the close, so this opening lasts 20 s.
        yield* trip
        const second = yield* circuits.health("ep_c")
        assert.strictEqual(second.openUntil?.getTime(), 10_000 + 20_000)
        // half-open → open: a failed probe reopens at once, now for 40 s; the next for 60 s (the cap), not 80.
        yield* TestClock.adjust(Duration.seconds(20))
        yield* attempt("ep_c", calls, CircuitVerdict.failure())
        assert.strictEqual((yield* circuits.health("ep_c")).openUntil?.getTime(), 30_000 + 40_000)
        yield* TestClock.adjust(Duration.seconds(40))
        yield* attempt("ep_c", calls, CircuitVerdict.failure())
        assert.strictEqual((yield* circuits.health("ep_c")).openUntil?.getTime(), 70_000 + 60_000)

        // A receiver's Retry-After can lengthen the opening it causes (capped at the maximum too).
        yield* attempt("ep_d", calls, CircuitVerdict.failure())
        yield* attempt("ep_d", calls, CircuitVerdict.failure())
        yield* attempt("ep_d", calls, CircuitVerdict.failure(Duration.seconds(45)))
        assert.strictEqual((yield* circuits.health("ep_d")).openUntil?.getTime(), 70_000 + 45_000)
        yield* settle
      })
    )
    return run.pipe(
      Effect.andThen(
        Effect.promise(async () => {
          assert.strictEqual(await transitionCount(metrics, "closed", "open"), 3)
          assert.strictEqual(await transitionCount(metrics, "open", "half_open"), 3)
          assert.strictEqual(await transitionCount(metrics, "half_open", "closed"), 1)
          assert.strictEqual(await transitionCount(metrics, "half_open", "open"), 2)
          assert.strictEqual(await gauge(metrics), 2, "ep_c and ep_d are open")
        })
      )
    )
  })

  it.effect("the open-period schedule: exponential from the base, capped, then ×0.8..1.2 jitter", () =>
    Effect.gen(function* () {
      const options = { base: Duration.seconds(30), max: Duration.minutes(10) }
      const delays = (jitter: boolean) =>
        Effect.gen(function* () {
          const step = yield* Schedule.toStep(openSchedule({ ...options, jitter }))
          const out: Array<number> = []
          for (let n = 0; n < 8; n++) out.push(Duration.toMillis((yield* step(0, undefined))[1]))
          return out
        })
      assert.deepStrictEqual(
        yield* delays(false),
        [30, 60, 120, 240, 480, 600, 600, 600].map((s) => s * 1000)
      )
      const exact = yield* delays(false)
      let spread = false
      for (let run = 0; run < 50; run++) {
        const jittered = yield* delays(true)
        jittered.forEach((ms, i) => {
          const base = exact[i] ?? 0
          assert.isAtLeast(ms, base * 0.8)
          assert.isAtMost(ms, base * 1.2)
          if (Math.abs(ms - base) > 1) spread = true
        })
      }
      assert.isTrue(spread, "jitter moves the periods")
    })
  )
})

describe("endpoint circuits on Redis (127.0.0.1:6379)", { tags: ["redis"] }, () => {
  it.live("two instances (two replicas) share one circuit per endpoint", () =>
    Effect.gen(function* () {
      // A prefix of this run's own: nothing else's keys are touched, nothing of ours outlives the key TTL.
      const prefix = `codex:test:circuit:${randomBytes(6).toString("hex")}:`
      const options = { ...policy, failureThreshold: 2, openBase: Duration.seconds(30), jitter: false }
      const replica = () => {
        const { layer } = makeMetricsTest()
        return Layer.build(endpointCircuitsRedis("redis://127.0.0.1:6379", prefix, options).pipe(Layer.provide(layer)))
      }
      const a = yield* replica()
      const b = yield* replica()
      const circuitsA = Context.get(a, EndpointCircuits)
      const circuitsB = Context.get(b, EndpointCircuits)
      const calls = yield* Ref.make(0)
      const count = Ref.update(calls, (n) => n + 1)

      // Replica A sees two failures; replica B's next attempt is refused without running.
      yield* circuitsA.guard("ep_shared", count, () => CircuitVerdict.failure())
      assert.strictEqual((yield* circuitsB.health("ep_shared")).circuit, "closed")
      // The open period runs on Redis' clock, which no test controls: it is bracketed by the moments just before the
      // tripping failure and just after B's read, so a slow machine widens the bracket instead of failing the test.
      const beforeTrip = Date.now()
      yield* circuitsA.guard("ep_shared", count, () => CircuitVerdict.failure())
      const seenByB = yield* circuitsB.health("ep_shared")
      const afterRead = Date.now()
      assert.strictEqual(seenByB.circuit, "open")
      const openUntil = seenByB.openUntil?.getTime() ?? 0
      // (whole milliseconds on both sides: 1 ms of rounding each way)
      assert.isAtLeast(openUntil, beforeTrip + 30_000 - 1, "open for the whole base period from the trip")
      assert.isAtMost(openUntil, afterRead + 30_000 + 1, "not longer than the base period")
      const refused = yield* circuitsB.guard("ep_shared", count, () => CircuitVerdict.success).pipe(Effect.flip)
      assert.instanceOf(refused, CircuitRejected)
      assert.strictEqual(yield* Ref.get(calls), 2, "B did not run the attempt")
      // Another endpoint on the same Redis is unaffected.
      yield* circuitsB.guard("ep_other", count, () => CircuitVerdict.success)
      assert.strictEqual((yield* circuitsA.health("ep_other")).circuit, "closed")
    }).pipe(Effect.scoped)
  )

  it.live("EndpointCircuitsLive: on Redis when REDIS_URL is set (replicas share), in process memory otherwise", () =>
    Effect.gen(function* () {
      const prefix = `codex:test:circuit:${randomBytes(6).toString("hex")}:`
      const breaker = {
        failureThreshold: 1,
        openBase: Duration.seconds(30),
        openMax: Duration.minutes(1),
        redisPrefix: prefix
      }
      const live = (redisUrl: Option.Option<Redacted.Redacted<string>>) => {
        const { layer } = makeMetricsTest()
        return Layer.build(
          EndpointCircuitsLive.pipe(Layer.provide(layer), Layer.provide(appConfigTest({ redisUrl, breaker })))
        ).pipe(Effect.map((context) => Context.get(context, EndpointCircuits)))
      }
      const redis = Option.some(Redacted.make("redis://127.0.0.1:6379"))
      const [a, b] = [yield* live(redis), yield* live(redis)]
      const [m1, m2] = [yield* live(Option.none()), yield* live(Option.none())]
      const fail = () => CircuitVerdict.failure()

      yield* a.guard("ep_live", Effect.void, fail)
      assert.strictEqual((yield* b.health("ep_live")).circuit, "open", "the second replica sees the first one's trip")
      yield* m1.guard("ep_live", Effect.void, fail)
      assert.strictEqual((yield* m1.health("ep_live")).circuit, "open")
      assert.strictEqual((yield* m2.health("ep_live")).circuit, "closed", "memory circuits are per process")
    }).pipe(Effect.scoped)
  )
})
