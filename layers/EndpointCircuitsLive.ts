import {
  Clock,
  DateTime,
  Duration,
  Effect,
  Exit,
  Layer,
  Option,
  Redacted,
  References,
  Schedule,
  type Scope,
  Stream
} from "effect"
import { CircuitBreaker } from "effect/persistence"
import type { Redis, RedisError } from "effect/persistence/Redis"
import { AppConfig } from "../services/AppConfig.ts"
import {
  CircuitRejected,
  type CircuitVerdict,
  EndpointCircuits,
  type EndpointCircuitsShape,
  type EndpointHealth
} from "../services/EndpointCircuits.ts"
import { type BreakerState, Metrics } from "../services/Metrics.ts"
import { openSchedule } from "../src/domain/CircuitPolicy.ts"

export interface EndpointCircuitsOptions {
  /** Consecutive failures that open a circuit. */
  readonly failureThreshold: number
  readonly openBase: Duration.Duration
  readonly openMax: Duration.Duration
  /** x0.8..1.2 on every open period (off in tests that step a TestClock to the exact end of one). */
  readonly jitter: boolean
}

const metricState: Record<CircuitBreaker.State["_tag"], BreakerState> = {
  Closed: "closed",
  Open: "open",
  HalfOpen: "half_open"
}

const toOutcome = (verdict: CircuitVerdict): CircuitBreaker.Outcome => {
  switch (verdict._tag) {
    case "Success":
      return CircuitBreaker.success
    case "Ignored":
      return CircuitBreaker.ignored
    case "Failure":
      return CircuitBreaker.failure({ retryAfter: verdict.retryAfter })
  }
}

const isBreakerError = (error: unknown): error is CircuitBreaker.CircuitBreakerError =>
  error instanceof CircuitBreaker.CircuitBreakerError

/**
 * Our contract (services/EndpointCircuits.ts) on Effect's keyed `CircuitBreaker`, one circuit per endpoint id, on
 * whatever `CircuitBreakerStore` is provided. The breaker itself emits nothing: its `transitions` (this instance's
 * own) become log lines and the `circuit_breaker_transitions_total{from,to}` / `circuit_breakers_open` metrics.
 * Store failures fail open (`onStoreError: "allow"`): with Redis down, attempts run unguarded rather than not at all.
 */
export const makeEndpointCircuits = (
  options: EndpointCircuitsOptions,
  healthyFor: Duration.Duration = closedAdmissionReuse
): Effect.Effect<EndpointCircuitsShape, never, CircuitBreaker.CircuitBreakerStore | Metrics | Scope.Scope> =>
  Effect.gen(function* () {
    const metrics = yield* Metrics
    const breaker = yield* CircuitBreaker.make({
      tripPolicy: CircuitBreaker.consecutive(options.failureThreshold),
      openDuration: openSchedule({ base: options.openBase, max: options.openMax, jitter: options.jitter }),
      // Caps a receiver's Retry-After when it is what opens the circuit.
      maxOpenDuration: options.openMax,
      onStoreError: "allow"
    })

    /**
     * Endpoints whose last attempt here went through the breaker and succeeded, until when (epoch ms): their circuit
     * is closed with no failure counted, and a success changes nothing in it. Their attempts within `healthyFor`
     * (production: `closedAdmissionReuse`, 250 ms) skip the breaker (a Scope, an admission and a record in the store
     * for each: ~10% of a drain's throughput, and a Redis round trip per attempt with the shared store); a failure
     * among them still goes to the breaker at once, and drops the endpoint from here, so failures are never skipped.
     * What it gives up: those successes do not reset a failure another attempt recorded meanwhile (another
     * replica's, in Redis, or one that overlapped them here) until the next success through the breaker, at most
     * `healthyFor` later; like a reused admission, an open set by another replica is seen that much late.
     */
    const healthyUntil = new Map<string, number>()
    const forgetHealthy = (endpointId: string) => Effect.sync(() => healthyUntil.delete(endpointId))
    const markHealthy = (endpointId: string, now: number) =>
      Effect.sync(() => {
        if (healthyUntil.size >= reusedAdmissionsMax) healthyUntil.delete(healthyUntil.keys().next().value ?? "")
        healthyUntil.set(endpointId, now + Duration.toMillis(healthyFor))
      })

    // Circuits this instance opened and whose open period has not run out: `circuit_breakers_open`. Another replica
    // may move a shared circuit on, so entries also lapse by time rather than only by this instance's transitions.
    const openUntil = new Map<string, number>()
    const reportOpen = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      for (const [key, until] of openUntil) if (until <= now) openUntil.delete(key)
      metrics.breakersOpen(openUntil.size)
    })

    const onTransition = (transition: CircuitBreaker.Transition) =>
      Effect.gen(function* () {
        healthyUntil.delete(transition.key)
        metrics.breakerTransition(metricState[transition.from], metricState[transition.to])
        const log = { endpointId: transition.key, from: metricState[transition.from], to: metricState[transition.to] }
        if (transition.to === "Open") {
          const until = (yield* Clock.currentTimeMillis) + Duration.toMillis(transition.retryAfter)
          openUntil.set(transition.key, until)
          yield* Effect.logWarning("circuit breaker: endpoint circuit opened; its deliveries wait").pipe(
            Effect.annotateLogs({
              ...log,
              openUntil: new Date(until).toISOString(),
              openForMs: Math.round(Duration.toMillis(transition.retryAfter)),
              consecutiveOpenings: transition.consecutiveOpenings
            })
          )
        } else {
          openUntil.delete(transition.key)
          yield* Effect.logInfo(
            transition.to === "Closed"
              ? "circuit breaker: endpoint circuit closed"
              : "circuit breaker: endpoint circuit half-open; the next attempt probes"
          ).pipe(Effect.annotateLogs(log))
        }
        yield* reportOpen
      })

    yield* breaker.transitions.pipe(Stream.runForEach(onTransition), Effect.forkScoped({ startImmediately: true }))
    yield* reportOpen.pipe(Effect.repeat(Schedule.spaced(Duration.seconds(5))), Effect.forkScoped)

    /** An outcome already known (the attempt ran outside the breaker), recorded if the circuit admits it now. */
    const recordOutcome = (endpointId: string, outcome: CircuitBreaker.Outcome) =>
      Effect.void.pipe(breaker.execute({ key: endpointId, classify: () => outcome }), Effect.ignore)

    const guard: EndpointCircuitsShape["guard"] = <A, E, R>(
      endpointId: string,
      attempt: Effect.Effect<A, E, R>,
      verdict: (result: A) => CircuitVerdict
    ) => {
      const outcomeOf = (exit: Exit.Exit<A, unknown>): CircuitBreaker.Outcome =>
        Exit.isSuccess(exit) ? toOutcome(verdict(exit.value)) : CircuitBreaker.failure()
      return Effect.flatMap(Clock.currentTimeMillis, (now) => {
        if ((healthyUntil.get(endpointId) ?? 0) > now) {
          return Effect.onExit(attempt, (exit) => {
            const outcome = outcomeOf(exit)
            return outcome._tag === "Failure"
              ? Effect.andThen(forgetHealthy(endpointId), recordOutcome(endpointId, outcome))
              : Effect.void
          })
        }
        return throughBreaker(endpointId, attempt, outcomeOf).pipe(
          Effect.onExit((exit) => {
            const outcome = outcomeOf(exit)
            if (outcome._tag === "Success") return markHealthy(endpointId, now)
            return outcome._tag === "Ignored" ? Effect.void : forgetHealthy(endpointId)
          })
        )
      })
    }

    /** The attempt through the breaker, its outcome told by `classify`; the breaker's refusals as `CircuitRejected`. */
    const throughBreaker = <A, E, R>(
      endpointId: string,
      attempt: Effect.Effect<A, E, R>,
      classify: (exit: Exit.Exit<A, E>) => CircuitBreaker.Outcome
    ): Effect.Effect<A, E | CircuitRejected, R> =>
      attempt.pipe(
        breaker.execute({ key: endpointId, classify }),
        Effect.catchIf(isBreakerError, (error) => {
          const reason = error.reason
          switch (reason._tag) {
            case "CircuitOpen":
              return Effect.fail(new CircuitRejected({ endpointId, circuit: "open", retryAfter: reason.retryAfter }))
            case "CircuitHalfOpen":
              return Effect.fail(new CircuitRejected({ endpointId, circuit: "half_open", retryAfter: Duration.zero }))
            case "CircuitBreakerStoreError":
              // Unreachable with onStoreError "allow" (the attempt then runs unrecorded); a defect if it ever happens.
              return Effect.die(error)
          }
        })
      )

    const health = (endpointId: string): Effect.Effect<EndpointHealth> =>
      breaker.state(endpointId).pipe(
        Effect.flatMap((state) =>
          Effect.map(DateTime.now, (now): EndpointHealth => {
            switch (state._tag) {
              case "Closed":
                return { circuit: "closed", openUntil: null }
              // The breaker moves Open → HalfOpen lazily, on the next attempt: past its time, an open circuit lets
              // the next attempt through as the probe, which is what half-open means to a reader.
              case "Open":
                return Duration.isZero(state.retryAfter)
                  ? { circuit: "half_open", openUntil: null }
                  : {
                      circuit: "open",
                      openUntil: new Date(DateTime.toEpochMillis(now) + Duration.toMillis(state.retryAfter))
                    }
              case "HalfOpen":
                return { circuit: "half_open", openUntil: null }
            }
          })
        ),
        Effect.catchCause((cause) =>
          Effect.logWarning("circuit breaker: could not read an endpoint's circuit", cause).pipe(
            Effect.annotateLogs({ endpointId }),
            Effect.as<EndpointHealth>({ circuit: "unknown", openUntil: null })
          )
        )
      )

    return EndpointCircuits.of({ guard, health })
  })

/**
 * A node-redis client for the store. Imported only when Redis is configured: loading node-redis costs ~0.3 s of
 * startup, which processes on the memory store do not pay. While disconnected, commands fail at once instead of
 * queueing until Redis is back (node-redis' default offline queue held every attempt and every health read ~5 s
 * during an outage: fail open must not mean fail slow). The client's own line per failed reconnection is silenced:
 * each call that cannot reach Redis is logged by the breaker (and `health`) instead, and a failed connection at
 * startup is the one line the process exits with.
 */
const redisClient = (url: string): Layer.Layer<Redis, RedisError> =>
  Layer.unwrap(
    Effect.promise(() => import("@effect/platform-node/NodeRedis")).pipe(
      Effect.map((NodeRedis) =>
        NodeRedis.layer({ url, disableOfflineQueue: true, socket: { connectTimeout: 2000 } }).pipe(
          Layer.provide(Layer.succeed(References.MinimumLogLevel, "None"))
        )
      )
    )
  )

/** How long one call of a circuit to Redis may take; past that the attempt runs without it (fail open). */
export const storeCallBudget = Duration.seconds(1)
/** After a call to Redis failed or ran out of time, the circuits leave Redis alone this long (fail open at once). */
export const storeRetryAfter = Duration.seconds(2)

const storeError = (message: string) =>
  new CircuitBreaker.CircuitBreakerError({ reason: new CircuitBreaker.CircuitBreakerStoreError({ message }) })

/**
 * The Redis store with a time budget. Each attempt calls Redis twice (admit, then record); with Redis down but its
 * connection up (a stalled server, a dropped network), each call waited for an answer without any limit (node-redis
 * as set up here times nothing out), every attempt holding its endpoint's slot, so delivery stopped. Now a call gives
 * up after `storeCallBudget`, and after any failure the store is skipped for `storeRetryAfter`: attempts meanwhile run
 * unguarded at once, as with a refused connection. Only store failures count; an open circuit is an answer.
 */
const boundedStore = (
  store: CircuitBreaker.CircuitBreakerStore["Service"],
  budget: Duration.Duration,
  retryAfter: Duration.Duration
): CircuitBreaker.CircuitBreakerStore["Service"] => {
  let skipUntil = 0
  const timedOut = storeError(`no answer from the store within ${Duration.format(budget)}`)
  const skipped = storeError("the store failed a moment ago; not asked again yet")
  const bounded = <A, R>(
    call: Effect.Effect<A, CircuitBreaker.CircuitBreakerError, R>
  ): Effect.Effect<A, CircuitBreaker.CircuitBreakerError, R> =>
    Effect.gen(function* () {
      if ((yield* Clock.currentTimeMillis) < skipUntil) return yield* Effect.fail(skipped)
      return yield* call.pipe(
        Effect.timeoutOrElse({ duration: budget, orElse: () => Effect.fail(timedOut) }),
        Effect.tapError((error) =>
          error.reason._tag === "CircuitBreakerStoreError"
            ? Effect.map(Clock.currentTimeMillis, (now) => {
                skipUntil = now + Duration.toMillis(retryAfter)
              })
            : Effect.void
        )
      )
    })
  return {
    admit: (key) => bounded(store.admit(key)),
    record: (options) => bounded(store.record(options)),
    state: (key) => bounded(store.state(key))
  }
}

/** How long a replica lets attempts through a circuit that Redis last said was closed without asking it again. */
export const closedAdmissionReuse = Duration.millis(250)

/** Most circuits whose last admission a replica keeps (the oldest go first). */
const reusedAdmissionsMax = 10_000

/**
 * A closed circuit's admission, reused for `reuse` by the attempts that follow on the same endpoint: a hot endpoint's
 * attempts ask Redis once per `reuse` instead of once each (every attempt's admit was a round trip to Redis on the way
 * to the receiver, ahead of the request: 5-57 ms p50 on the drill's CPU-bound machine). What it gives up: an open set
 * by another replica is seen up to `reuse` late (a handful of attempts more, each still one outcome, recorded under the
 * old generation, which Redis ignores). An open set by this replica is seen at once: a transition, or any store
 * failure, drops the endpoint's kept admission; probes and half-open circuits are never kept.
 */
const reusedAdmissions = (
  store: CircuitBreaker.CircuitBreakerStore["Service"],
  reuse: Duration.Duration
): CircuitBreaker.CircuitBreakerStore["Service"] => {
  const kept = new Map<string, { readonly admission: CircuitBreaker.Admission; readonly until: number }>()
  const forget = (key: string) => Effect.sync(() => kept.delete(key))
  return {
    admit: (key) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const last = kept.get(key)
        if (last !== undefined && last.until > now) return last.admission
        const admission = yield* store.admit(key).pipe(Effect.tapError(() => forget(key)))
        kept.delete(key)
        if (!admission.probe && admission.transition === undefined) {
          if (kept.size >= reusedAdmissionsMax) kept.delete(kept.keys().next().value ?? "")
          kept.set(key, { admission, until: now + Duration.toMillis(reuse) })
        }
        return admission
      }),
    record: (options) =>
      store.record(options).pipe(
        Effect.tap((transition) => (transition === undefined ? Effect.void : forget(options.key))),
        Effect.tapError(() => forget(options.key))
      ),
    state: store.state
  }
}

/**
 * The Redis store under a key prefix, bounded in time (`boundedStore`), a closed circuit's admission reused for a
 * moment (`reusedAdmissions`).
 */
const redisStore = (
  prefix: string,
  budget: Duration.Duration = storeCallBudget,
  retryAfter: Duration.Duration = storeRetryAfter,
  reuse: Duration.Duration = closedAdmissionReuse
): Layer.Layer<CircuitBreaker.CircuitBreakerStore, never, Redis> =>
  Layer.effect(
    CircuitBreaker.CircuitBreakerStore,
    Effect.map(Effect.service(CircuitBreaker.CircuitBreakerStore), (store) =>
      reusedAdmissions(boundedStore(store, budget, retryAfter), reuse)
    )
  ).pipe(Layer.provide(CircuitBreaker.layerStoreRedis({ prefix })))

/** One store per process (the memory store) or per Redis (the shared store: `REDIS_URL`). */
const storeLayer = (
  redisUrl: Option.Option<Redacted.Redacted<string>>,
  prefix: string
): Layer.Layer<CircuitBreaker.CircuitBreakerStore, RedisError> =>
  Option.match(redisUrl, {
    onNone: () => CircuitBreaker.layerStoreMemory(),
    onSome: (url) => redisStore(prefix).pipe(Layer.provide(redisClient(Redacted.value(url))))
  })

/**
 * The endpoints' circuits as configured (`BREAKER_*`): in this process's memory, or in Redis when `REDIS_URL` is set,
 * so every replica (API and `npm run worker` processes) sees one circuit per endpoint. An unreachable Redis at
 * startup stops the process (a misconfiguration); later outages fail open.
 */
export const EndpointCircuitsLive: Layer.Layer<EndpointCircuits, RedisError, AppConfig | Metrics> = Layer.unwrap(
  Effect.gen(function* () {
    const config = yield* AppConfig
    const circuits = Layer.effect(
      EndpointCircuits,
      makeEndpointCircuits({
        failureThreshold: config.breaker.failureThreshold,
        openBase: config.breaker.openBase,
        openMax: config.breaker.openMax,
        jitter: true
      })
    )
    return circuits.pipe(Layer.provide(storeLayer(config.redisUrl, config.breaker.redisPrefix)))
  })
)

/**
 * Circuits on a given Redis with a key prefix of their own (tests: one prefix per run), its calls bounded as in
 * production unless `store` says otherwise.
 */
export const endpointCircuitsRedis = (
  url: string,
  prefix: string,
  options: EndpointCircuitsOptions,
  store: {
    readonly budget?: Duration.Duration
    readonly retryAfter?: Duration.Duration
    readonly reuse?: Duration.Duration
  } = {}
): Layer.Layer<EndpointCircuits, RedisError, Metrics> =>
  Layer.effect(EndpointCircuits, makeEndpointCircuits(options, store.reuse)).pipe(
    Layer.provide(redisStore(prefix, store.budget, store.retryAfter, store.reuse).pipe(Layer.provide(redisClient(url))))
  )
