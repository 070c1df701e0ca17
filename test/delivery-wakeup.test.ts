import { assert, describe, layer } from "@effect/vitest"
import { Duration, Effect, Exit, Layer, Option, Scope } from "effect"
import { SqlClient } from "effect/sql"
import { DeliveryWakeupsLive } from "../layers/DeliveryWakeupsLive.ts"
import { DeliveryWakeups } from "../services/DeliveryWakeups.ts"
import { fastWorker, publish, settled, tenantWithEndpoint } from "./support/deliveryApi.ts"
import { request } from "./support/http.ts"
import { poll } from "./support/poll.ts"
import { answer, headerOf, makeReceiver, type Receiver } from "./support/receiver.ts"
import { TestDatabase, TestSqlLive } from "./support/testDatabase.ts"
import { makeTestServer, TestServer } from "./support/testServer.ts"

/**
 * Issue 17, embedded mode: on the embedded database (PGlite, no DATABASE_URL) the worker shares the API's process and
 * pool of one, so it cannot LISTEN; what the API queues wakes it in process, once the write has committed. The worker
 * polls here once a minute: only that wake-up explains a delivery within the 10 s each check allows.
 */

const pollInterval = Duration.minutes(1)
/** Well below the poll interval: a delivery that waited for the poll fails the test. */
const deadlineMs = 10_000

/**
 * The real server on an embedded PGlite of its own (`memory://`), whatever database the run uses, as `npm start`
 * without DATABASE_URL. One attempt per delivery: a failure is final at once (for `recover`).
 */
const embeddedServer = makeTestServer({
  config: {
    databaseUrl: Option.none(),
    pgliteDir: "memory://",
    delivery: fastWorker({ pollInterval, maxAttempts: 1 })
  }
}).pipe(Layer.provide(Layer.succeed(TestDatabase, { kind: "pglite", url: Option.none() })))

/** How many requests carrying the event's `webhook-id` the receiver got. */
const receivedFor = (receiver: Receiver, eventId: string) =>
  receiver.requests.filter((r) => headerOf(r, "webhook-id") === eventId).length

/** Waits (10 s at most, far below the 60 s poll) until the receiver got `count` requests for the event. */
const deliveredTimes = (receiver: Receiver, eventId: string, count: number) =>
  poll(
    `${count} deliveries of ${eventId} (without the in-process wake-up they wait for the 60 s poll)`,
    Effect.sync(() => receivedFor(receiver, eventId)),
    (received) => received >= count,
    { timeoutMs: deadlineMs }
  )

let keys = 0
const freshKey = () => `wakeup-${Date.now()}-${++keys}`

layer(embeddedServer, { excludeTestServices: true })("the embedded database: in-process wake-ups", (it) => {
  it.effect(
    "the worker does not LISTEN, and each event published one after another is delivered before the next poll",
    () =>
      Effect.gen(function* () {
        const { logs } = yield* TestServer
        const started = logs.find((line) => line.includes('"delivery worker started"'))
        assert.isDefined(started, "the worker runs in the API process")
        const entry = JSON.parse(started ?? "{}") as { listening?: unknown; annotations?: { listening?: unknown } }
        assert.strictEqual(entry.listening ?? entry.annotations?.listening, false, "a pool of one cannot LISTEN")
        const receiver = yield* makeReceiver((_, __, res) => answer(res, 204))
        const { api, apiKey } = yield* tenantWithEndpoint(receiver.url)
        for (let i = 0; i < 20; i++) {
          const { event } = yield* publish(api, "order.created", { i })
          yield* deliveredTimes(receiver, event.id, 1)
        }
        // With an Idempotency-Key the publish completes its key in its own statement (no transaction around it).
        const keyed = yield* request("/v1/events", {
          bearer: apiKey,
          headers: { "idempotency-key": freshKey() },
          json: { type: "order.created", data: { keyed: true } }
        })
        assert.strictEqual(keyed.status, 202, keyed.text)
        const keyedId = (JSON.parse(keyed.text) as { readonly event: { readonly id: string } }).event.id
        yield* deliveredTimes(receiver, keyedId, 1)
      }),
    { timeout: 120_000 }
  )

  it.effect(
    "a manual retry is delivered before the next poll, also inside the Idempotency-Key transaction",
    () =>
      Effect.gen(function* () {
        const receiver = yield* makeReceiver((_, __, res) => answer(res, 204))
        const { api, apiKey } = yield* tenantWithEndpoint(receiver.url)
        const { event } = yield* publish(api)
        yield* deliveredTimes(receiver, event.id, 1)
        const delivery = yield* settled(api, event.id)
        assert.strictEqual(delivery.status, "succeeded")

        const retried = yield* api.deliveries.retry({ params: { id: delivery.id } }).pipe(Effect.orDie)
        assert.strictEqual(retried.status, "pending")
        yield* deliveredTimes(receiver, event.id, 2)
        assert.strictEqual((yield* settled(api, event.id)).status, "succeeded")

        // The retry's transaction is a savepoint in the middleware's; the worker wakes when the outer one commits.
        const keyed = yield* request(`/v1/deliveries/${delivery.id}/retry`, {
          method: "POST",
          bearer: apiKey,
          headers: { "idempotency-key": freshKey() }
        })
        assert.strictEqual(keyed.status, 202, keyed.text)
        yield* deliveredTimes(receiver, event.id, 3)
      }),
    { timeout: 60_000 }
  )

  it.effect(
    "recover re-queues failed deliveries, delivered before the next poll",
    () =>
      Effect.gen(function* () {
        const failing = { value: true }
        const receiver = yield* makeReceiver((_, __, res) => answer(res, failing.value ? 500 : 204))
        const { api, apiKey, endpointId } = yield* tenantWithEndpoint(receiver.url)
        const events: Array<string> = []
        for (let i = 0; i < 3; i++) {
          const { event } = yield* publish(api, "order.created", { i })
          assert.strictEqual((yield* settled(api, event.id)).status, "failed", "one attempt, answered 500")
          events.push(event.id)
        }
        failing.value = false
        const since = "2000-01-01T00:00:00Z"
        const recovered = yield* api.deliveries
          .recover({ params: { id: endpointId }, payload: { since } })
          .pipe(Effect.orDie)
        assert.strictEqual(recovered.queued, 3)
        for (const id of events) yield* deliveredTimes(receiver, id, 2)

        // Again through the Idempotency-Key transaction.
        failing.value = true
        const { event } = yield* publish(api, "order.created", { last: true })
        assert.strictEqual((yield* settled(api, event.id)).status, "failed")
        failing.value = false
        const keyed = yield* request(`/v1/endpoints/${endpointId}/recover`, {
          bearer: apiKey,
          headers: { "idempotency-key": freshKey() },
          json: { since }
        })
        assert.strictEqual(keyed.status, 202, keyed.text)
        assert.strictEqual((JSON.parse(keyed.text) as { readonly queued: number }).queued, 1)
        yield* deliveredTimes(receiver, event.id, 2)
      }),
    { timeout: 60_000 }
  )
})

/** DeliveryWakeups on a real database: when a subscriber is woken relative to the transaction that queued. */
const wakeupsOnSql = DeliveryWakeupsLive.pipe(Layer.provideMerge(TestSqlLive))

/** A subscriber counting its wake-ups, for the life of the scope. */
const counter = Effect.gen(function* () {
  const wakeups = yield* DeliveryWakeups
  const count = { value: 0 }
  yield* wakeups.subscribe(Effect.sync(() => count.value++))
  return count
})

describe("DeliveryWakeups", () => {
  layer(wakeupsOnSql, { excludeTestServices: true })("after the commit, never before", (it) => {
    it.effect("outside a transaction: at once", () =>
      Effect.gen(function* () {
        const count = yield* counter
        yield* (yield* DeliveryWakeups).queued
        assert.strictEqual(count.value, 1)
      })
    )

    it.effect("in a transaction: once it commits; a rolled-back one: never", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const { queued } = yield* DeliveryWakeups
        const count = yield* counter
        const seenInside = yield* sql.withTransaction(
          Effect.gen(function* () {
            yield* sql`SELECT 1`
            yield* queued
            return count.value
          })
        )
        assert.strictEqual(seenInside, 0, "not woken before the commit")
        assert.strictEqual(count.value, 1, "woken once committed")

        const rolledBack = yield* sql
          .withTransaction(queued.pipe(Effect.andThen(Effect.fail("refused" as const))))
          .pipe(Effect.flip)
        assert.strictEqual(rolledBack, "refused")
        assert.strictEqual(count.value, 1, "a rollback wakes nobody")
      })
    )

    it.effect("nested (a retry inside the Idempotency-Key transaction): when the outermost commits", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const { queued } = yield* DeliveryWakeups
        const count = yield* counter
        const seen = yield* sql.withTransaction(
          Effect.gen(function* () {
            yield* sql.withTransaction(queued)
            const afterInner = count.value
            // A savepoint that rolls back discards its wake-up, though the outer transaction commits.
            yield* sql
              .withTransaction(queued.pipe(Effect.andThen(Effect.fail("inner refused" as const))))
              .pipe(Effect.flip)
            return afterInner
          })
        )
        assert.strictEqual(seen, 0, "the inner commit is only a savepoint")
        assert.strictEqual(count.value, 1, "one wake-up, from the committed savepoint")

        // The outer transaction fails after the inner one committed (the Idempotency-Key claim was lost): nothing.
        yield* sql
          .withTransaction(sql.withTransaction(queued).pipe(Effect.andThen(Effect.fail("claim lost" as const))))
          .pipe(Effect.flip)
        assert.strictEqual(count.value, 1)
      })
    )

    it.effect("a subscriber is woken while its scope is open, and no longer once it closes", () =>
      Effect.gen(function* () {
        const { queued } = yield* DeliveryWakeups
        const scope = yield* Scope.make()
        const count = yield* counter.pipe(Scope.provide(scope))
        yield* queued
        assert.strictEqual(count.value, 1)
        yield* Scope.close(scope, Exit.void)
        yield* queued
        assert.strictEqual(count.value, 1)
      })
    )
  })
})
