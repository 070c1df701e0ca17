import { randomBytes } from "node:crypto"
import { PgClient } from "@effect/sql-pg"
import { Deferred, Duration, Effect, Exit, FiberSet, Layer, LogLevel, Option, Queue, Random, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import { AppConfig } from "../services/AppConfig.ts"
import { DeliveryWakeups } from "../services/DeliveryWakeups.ts"
import { DeliveryWorker } from "../services/DeliveryWorker.ts"
import { type CircuitRejected, EndpointCircuits } from "../services/EndpointCircuits.ts"
import { type DeliveryOutcome, Metrics } from "../services/Metrics.ts"
import { SecretBox } from "../services/SecretBox.ts"
import { UrlPolicy } from "../services/UrlPolicy.ts"
import { WebhookSender } from "../services/WebhookSender.ts"
import {
  type AttemptOutcome,
  deletedEndpointError,
  deliveryChannel,
  expungedEventError,
  parseQueuedFor
} from "../src/domain/Delivery.ts"
import { decide, retried } from "../src/domain/DeliveryDecision.ts"
import { makeDeliverySlots } from "../src/domain/DeliverySlots.ts"
import { delayAfterAttempt, retrySchedule } from "../src/domain/RetryPolicy.ts"
import { type ClaimedRow, hasEventData } from "./DeliveryClaim.ts"
import { makeDeliveryCompletions } from "./DeliveryCompletions.ts"
import { makeDeliveryExchange } from "./DeliveryExchange.ts"
import { makeDeliveryQueue } from "./DeliveryQueue.ts"
import { UrlPolicyLive } from "./UrlPolicyLive.ts"
import { WebhookSenderLive } from "./WebhookSenderLive.ts"

const metricOutcome: Record<AttemptOutcome, DeliveryOutcome> = {
  succeeded: "success",
  failed: "failure",
  gone: "gone",
  timeout: "timeout",
  network_error: "network_error",
  blocked: "rejected"
}

/** While another attempt probes a half-open circuit, the endpoint's deliveries look again after about this long. */
const halfOpenRecheck = Duration.seconds(1)

const newWorkerId = (): string => `wkr_${randomBytes(8).toString("hex")}`

/** What the worker needs from its process besides an HTTP client (its own, or one a test gives it). */
type WorkerRequirements =
  | AppConfig
  | SqlClient.SqlClient
  | PgClient.PgClient
  | UrlPolicy
  | Metrics
  | EndpointCircuits
  | SecretBox
  | DeliveryWakeups

/**
 * The delivery worker (see services/DeliveryWorker.ts), in stages: the queue's SQL (DeliveryQueue: claim, record,
 * defer, cancel, release), the HTTP exchange and its classification (DeliveryExchange), the retry decision
 * (src/domain/DeliveryDecision.ts), group-committed records (DeliveryCompletions), and this loop.
 *
 * One claim loop fills up to `DELIVERY_CONCURRENCY` sends; it sleeps until a publishing transaction's NOTIFY, this
 * process's own writers (DeliveryWakeups, after their commit, while it does not LISTEN), a finished send or the poll
 * interval wakes it; a NOTIFY naming only endpoints (or a tenant) at their cap here does not, since the end of one of
 * their sends will. Each claim takes due deliveries fairly across tenants and endpoints with `FOR UPDATE SKIP LOCKED`
 * and leases them (`locked_until`, `locked_by`) for the send timeout plus a margin, so concurrent workers never claim
 * the same delivery, and a crashed worker's deliveries come due again when the lease runs out. Finished attempts are
 * recorded in batches (attempt rows + new states, one statement per batch), each delivery only while this worker holds
 * its lease: a crash between a send and its record re-sends that delivery once the lease expires (at-least-once), and
 * nothing recorded is sent again. Each attempt runs through its endpoint's circuit (EndpointCircuits); an open circuit
 * defers the endpoint's deliveries without using attempts. At most `DELIVERY_TENANT_CONCURRENCY` sends per tenant and
 * `DELIVERY_ENDPOINT_CONCURRENCY` per endpoint are in flight; the claims keep more leased and ready to start, so a
 * freed slot does not wait for a claim (src/domain/DeliverySlots.ts).
 */
export const DeliveryWorkerLive: Layer.Layer<DeliveryWorker, never, WorkerRequirements | WebhookSender> = Layer.effect(
  DeliveryWorker,
  Effect.gen(function* () {
    const config = yield* AppConfig
    const sql = yield* SqlClient.SqlClient
    const pg = yield* PgClient.PgClient
    const metrics = yield* Metrics
    const inProcess = yield* DeliveryWakeups
    const settings = config.delivery
    const workerId = newWorkerId()
    const schedule = retrySchedule({
      maxAttempts: settings.maxAttempts,
      base: settings.backoffBase,
      max: settings.backoffMax
    })
    // The lease outlasts the longest send (timeout, plus the DNS check of the SSRF guard) with room to record it.
    const leaseSeconds = Duration.toMillis(Duration.sum(settings.timeout, settings.leaseMargin)) / 1000
    // LISTEN holds a connection for good: not on a pool of one (the embedded database), which polls instead.
    const listening = Option.isSome(config.databaseUrl) && config.databasePoolMax >= 2

    const queue = makeDeliveryQueue(sql, {
      workerId,
      leaseSeconds,
      disableAfterSeconds: Duration.toSeconds(config.delivery.disableAfter)
    })
    const exchange = makeDeliveryExchange({
      config,
      sender: yield* WebhookSender,
      urlPolicy: yield* UrlPolicy,
      circuits: yield* EndpointCircuits,
      box: yield* SecretBox
    })
    const completions = yield* makeDeliveryCompletions(queue)

    const wakeups = yield* Queue.dropping<void>(1)
    const wake = Queue.offer(wakeups, undefined).pipe(Effect.asVoid)
    const waitForWork = Queue.take(wakeups).pipe(Effect.timeoutOption(settings.pollInterval), Effect.asVoid)
    // Whether LISTEN is in place now: its NOTIFY then reaches this worker for what this process queues too, naming
    // the endpoints (see `wakeFor`), a moment after the in-process wake-up, which would only add a blind claim.
    let notified = false
    // Deliveries queued by this process wake it directly: the only wake-up on a pool of one, which cannot LISTEN, and
    // while LISTEN is down.
    yield* inProcess.subscribe(Effect.suspend(() => (notified ? Effect.void : wake)))

    /**
     * The endpoint's circuit refused the attempt: no attempt is recorded and none is used up. The endpoint is paused
     * until the circuit lets a probe through (`open`), or for a moment while another worker's probe runs
     * (`half_open`); its deliveries keep their places.
     */
    const defer = (row: ClaimedRow, rejected: CircuitRejected) =>
      Effect.gen(function* () {
        const wait =
          rejected.circuit === "open"
            ? Duration.max(rejected.retryAfter, Duration.millis(50))
            : Duration.times(halfOpenRecheck, yield* Random.nextBetween(0.8, 1.2))
        yield* queue.defer(row, wait)
        yield* Effect.logDebug("delivery deferred: the endpoint's circuit is not closed").pipe(
          Effect.annotateLogs({
            deliveryId: row.id,
            endpointId: row.endpoint_id,
            circuit: rejected.circuit,
            waitMs: Math.round(Duration.toMillis(wait))
          })
        )
      })

    // The deliveries this worker has claimed and not yet finished with, released by id at shutdown.
    const held = new Set<string>()

    /**
     * One claimed delivery, start to finish; `sent` runs once the request is over. Never fails: problems are logged,
     * the lease then runs out.
     */
    const deliver = (row: ClaimedRow, sent: Effect.Effect<void>) =>
      Effect.gen(function* () {
        // Deleted: queued by a publish that read the endpoint just before its deletion committed (see
        // EndpointsLive `delete`). A deleted endpoint has no secret, and receives nothing any more.
        if (row.endpoint_deleted || row.secret === null) return yield* queue.cancel(row, deletedEndpointError)
        // Expunged: its data is gone, and nothing is sent without it.
        if (!hasEventData(row)) return yield* queue.cancel(row, expungedEventError)
        const exchanged = yield* exchange(row, sent)
        if (exchanged._tag === "Refused") return yield* defer(row, exchanged.rejected)
        const { result, startedAt, durationMs } = exchanged
        const attempt = row.attempt_count + 1
        metrics.deliveryAttempt(metricOutcome[result.outcome], durationMs / 1000)
        // The schedule is stepped (and its jitter drawn) only for an attempt that may be retried.
        const backoff = retried(result) ? yield* delayAfterAttempt(schedule, attempt) : Option.none()
        const decision = decide(result, backoff, settings.backoffMax)
        const state = yield* completions.record({ row, attempt, startedAt, durationMs, result, decision })
        if (state === "succeeded") metrics.deliveryLag((Date.now() - row.event_created_at.getTime()) / 1000)
        // Asked first: the line's annotations cost more than the rest of this step, at every attempt.
        if (yield* LogLevel.isEnabled("Debug")) {
          yield* Effect.logDebug("delivery attempt").pipe(
            Effect.annotateLogs({
              deliveryId: row.id,
              attempt,
              outcome: result.outcome,
              status: result.statusCode,
              durationMs,
              state
            })
          )
        }
        if (state === "lease lost") {
          yield* Effect.logWarning("delivery: lease lost before the attempt was recorded").pipe(
            Effect.annotateLogs({ deliveryId: row.id, attempt })
          )
        }
      }).pipe(
        Effect.catchCause((cause) =>
          Effect.logError("delivery: could not finish the delivery; it is retried when the lease expires", cause).pipe(
            Effect.annotateLogs({ deliveryId: row.id })
          )
        ),
        // Interrupted (shutdown), the delivery may be neither sent nor recorded: it stays held, to be released.
        Effect.onExit((exit) => Effect.sync(() => Exit.hasInterrupts(exit) || held.delete(row.id)))
      )

    const sends = yield* FiberSet.make<void, never>()
    const slots = makeDeliverySlots<ClaimedRow>(settings)
    // Ready for longer than this, a delivery goes back to the queue (see src/domain/DeliverySlots.ts).
    const readyFor = Duration.min(Duration.seconds(2), Duration.millis((leaseSeconds * 1000) / 4))
    let stopping = false
    // The loop waits for deliveries held (sent, ready or being recorded) to be fewer: each record then wakes it.
    let waitingForRoom = false

    /** The row's request is over: its endpoint's and tenant's slots go back (once), which may start the next. */
    const requestEnded = (row: ClaimedRow) => {
      let ended = false
      return Effect.suspend(() => {
        if (ended) return Effect.void
        ended = true
        slots.requestEnded(row)
        return Effect.andThen(startReady, wake)
      })
    }

    /** Starts what is ready and has room (not once the worker is stopping: what is left is released). */
    const startReady: Effect.Effect<void> = Effect.suspend(() => {
      if (stopping) return Effect.void
      const starting = slots.takeStartable()
      return starting.length === 0
        ? Effect.void
        : Effect.forEach(
            starting,
            (row) => {
              const ended = requestEnded(row)
              return FiberSet.run(
                sends,
                deliver(row, ended).pipe(
                  // Its request ended already, unless the send failed before or after a 410 Gone. Recorded, it
                  // frees room under the hold cap: the loop's next claim, should it be waiting for that.
                  Effect.ensuring(
                    Effect.andThen(
                      ended,
                      Effect.suspend(() => (waitingForRoom ? wake : Effect.void))
                    )
                  )
                )
              )
            },
            { discard: true }
          )
    })

    /** Ready deliveries that waited `readyFor` behind their tenant's sends go back to the queue. */
    const giveBackStale = Effect.suspend(() => {
      const stale = slots.takeStale(Date.now() - Duration.toMillis(readyFor))
      if (stale.length === 0) return Effect.void
      for (const row of stale) held.delete(row.id)
      return queue.releaseHeld(stale.map((row) => row.id)).pipe(
        Effect.tap((released) =>
          Effect.logDebug("delivery: ready deliveries given back, their tenant's sends are slow").pipe(
            Effect.annotateLogs({ released })
          )
        ),
        Effect.catchCause((cause) =>
          Effect.logWarning("delivery: could not give back ready deliveries; their leases expire by themselves", cause)
        ),
        Effect.asVoid
      )
    })

    // A NOTIFY naming only endpoints (or a tenant) at their cap here does not wake the loop: a send of each is in
    // flight, and its end wakes the loop to claim (the new deliveries included); a claim now could only come back
    // empty. Under load a hot endpoint is at its cap nearly all the time, and each publish woke every worker for nothing.
    const wakeFor = (payload: string) =>
      Effect.suspend(() => {
        const queued = parseQueuedFor(payload)
        return queued === undefined || slots.mayClaimFor(queued) ? wake : Effect.void
      })

    // A claim looks at every endpoint with pending deliveries, so it costs more than the sends it refills (3.5 ms of
    // the store's time whether it takes 16 rows or 48, beside 100 endpoints): the loop claims while fewer than half a
    // concurrency's worth are ready to start, for at least half a concurrency's worth, and otherwise waits for a send
    // to end (each end wakes it) or for new work. It holds at most three times its concurrency: sending, ready, or
    // being recorded. Claims of a handful of rows (at most twice the concurrency held) cost the store 150 µs per
    // delivery in the worker benchmark.
    // A throttled endpoint's next turn (DeliveryClaim `throttled`) is a time no notification announces: the loop sets
    // a timer for the earliest one a claim returned, so that the endpoint's deliveries go out at its rate, not at the
    // poll interval's. Timers live in this layer's scope.
    const timers = yield* FiberSet.make<void, never>()
    const wakeForTurns = (rows: ReadonlyArray<ClaimedRow>) => {
      let next = Number.POSITIVE_INFINITY
      for (const row of rows) {
        if (row.endpoint_turn_in_ms !== null) next = Math.min(next, row.endpoint_turn_in_ms)
      }
      if (next === Number.POSITIVE_INFINITY) return Effect.void
      // In the database's time (the claim's `now()`), plus a few ms for the claim's own way back.
      const delay = Duration.millis(Math.max(0, next) + 5)
      return FiberSet.run(timers, Effect.andThen(Effect.sleep(delay), wake)).pipe(Effect.asVoid)
    }
    const holdCap = settings.concurrency * 3
    const refillBatch = Math.max(1, Math.ceil(settings.concurrency / 2))
    const loop = Effect.gen(function* () {
      while (true) {
        yield* giveBackStale
        const room = holdCap - held.size
        if (room < refillBatch || slots.startableCount() > settings.concurrency / 2) {
          waitingForRoom = room < refillBatch
          yield* waitForWork
          waitingForRoom = false
          continue
        }
        // The claim and the registration of what it leased are one step. Interrupted in between (shutdown stops this
        // loop first), the leases were neither sent nor released: their deliveries waited for the lease to run out
        // (31-45 s; the drill's rolling restart had some at each stop). Registered, those that do not start are
        // released by the shutdown with the rest.
        const rows = yield* queue.claim({ limit: room, ...slots.claimLoad() }).pipe(
          Effect.catchCause((cause) =>
            Effect.logWarning("delivery: claiming failed; trying again at the next poll", cause).pipe(
              Effect.as([] as ReadonlyArray<ClaimedRow>)
            )
          ),
          Effect.tap((claimed) =>
            Effect.sync(() => {
              for (const row of claimed) held.add(row.id)
              slots.claimed(claimed, Date.now())
            })
          ),
          Effect.uninterruptible
        )
        yield* Effect.logDebug("delivery: claimed").pipe(Effect.annotateLogs({ room, claimed: rows.length }))
        yield* wakeForTurns(rows)
        yield* startReady
        // The claim looks at every endpoint with room at once: fewer rows than room, none of them filling its
        // tenant's share, means nothing else is due that this process may take now.
        if (rows.length < room && !rows.some(slots.tenantFull)) yield* waitForWork
      }
    })

    const listenerReady = yield* Deferred.make<void>()
    const listener = Effect.gen(function* () {
      const notifications = yield* pg.listen(deliveryChannel)
      notified = true
      yield* Deferred.succeed(listenerReady, undefined)
      // Anything published while not listening is found by this first look.
      yield* wake
      return yield* Effect.forever(
        Queue.take(notifications).pipe(Effect.flatMap((notification) => wakeFor(notification.payload)))
      )
    }).pipe(
      Effect.ensuring(
        Effect.sync(() => {
          notified = false
        })
      ),
      Effect.scoped,
      Effect.tapCause((cause) => Effect.logWarning("delivery: LISTEN failed; polling until it is back", cause)),
      Effect.retry(Schedule.spaced(settings.pollInterval)),
      Effect.ignore
    )

    // Shutdown, registered before the fibers exist so that a start-up interrupted anywhere still runs it. The claim
    // loop and the listener are forked into this layer's scope below, so they are interrupted first (finalizers run
    // in reverse); then this lets in-flight sends finish (at most one send timeout, within SHUTDOWN_TIMEOUT), records
    // what they finished, and releases the leases still held so another worker takes those deliveries at once.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        stopping = true
        const pending = yield* FiberSet.size(sends)
        yield* Effect.logInfo("delivery worker: draining, stopped claiming; waiting for in-flight sends").pipe(
          Effect.annotateLogs({ inFlight: pending })
        )
        const drain = Duration.min(Duration.sum(settings.timeout, Duration.seconds(1)), config.shutdownTimeout)
        yield* FiberSet.awaitEmpty(sends).pipe(Effect.timeoutOption(drain))
        yield* FiberSet.clear(sends)
        yield* completions.close
        const released = yield* queue
          .releaseHeld([...held])
          .pipe(
            Effect.catchCause((cause) =>
              Effect.logWarning("delivery worker: could not release its leases; they expire by themselves", cause).pipe(
                Effect.as(0)
              )
            )
          )
        yield* Effect.logInfo("delivery worker: stopped").pipe(Effect.annotateLogs({ leasesReleased: released }))
      })
    )

    yield* Effect.forkScoped(loop)
    if (listening) {
      yield* Effect.forkScoped(listener)
      const ready = yield* Deferred.await(listenerReady).pipe(Effect.timeoutOption(Duration.seconds(5)))
      if (Option.isNone(ready)) yield* Effect.logWarning("delivery: LISTEN not confirmed after 5 s; polling meanwhile")
    }
    yield* Effect.logInfo("delivery worker started").pipe(
      Effect.annotateLogs({
        workerId,
        listening,
        concurrency: settings.concurrency,
        tenantConcurrency: settings.tenantConcurrency,
        endpointConcurrency: settings.endpointConcurrency
      })
    )

    return DeliveryWorker.of({
      workerId,
      wake,
      inFlight: Effect.sync(() => slots.sending()),
      listening
    })
  })
)

/**
 * The worker with its own outbound HTTP client (undici: keep-alive pools, never follows redirects, the connect-time SSRF
 * guard unless private networks are allowed). Needs the database, configuration, metrics, the URL policy and the
 * endpoints' circuits of the process (shared with the API, which shows them as endpoint health).
 */
const DeliveryWorkerWithClient: Layer.Layer<DeliveryWorker, never, WorkerRequirements> = DeliveryWorkerLive.pipe(
  Layer.provide(WebhookSenderLive)
)

/** The worker on its own (`npm run worker`), with the system resolver's URL policy. */
export const DeliveryWorkerDefault: Layer.Layer<
  DeliveryWorker,
  never,
  AppConfig | SqlClient.SqlClient | PgClient.PgClient | Metrics | EndpointCircuits | SecretBox | DeliveryWakeups
> = DeliveryWorkerWithClient.pipe(Layer.provide(UrlPolicyLive))

/** In the API process: the worker unless `DELIVERY_WORKER=false`, with the URL policy the API uses. */
export const DeliveryWorkerInServer: Layer.Layer<never, never, WorkerRequirements> = Layer.effectDiscard(
  Effect.gen(function* () {
    const config = yield* AppConfig
    // Built in this layer's scope, so the worker stops (and releases its leases) when the layer is torn down.
    if (config.delivery.worker) yield* Layer.build(DeliveryWorkerWithClient)
  })
)
