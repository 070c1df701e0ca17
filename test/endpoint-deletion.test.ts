import { assert, layer } from "@effect/vitest"
import { Deferred, Duration, Effect } from "effect"
import { SqlClient } from "effect/sql"
import { deletedEndpointError } from "../src/domain/Delivery.ts"
import { type Api, publish, settled, tenantWithEndpoint } from "./support/deliveryApi.ts"
import { expectProblem, request } from "./support/http.ts"
import { answer, eventually, makeReceiver, type Received } from "./support/receiver.ts"
import { testServerWithSql } from "./support/sharedDatabase.ts"
import { TestServer } from "./support/testServer.ts"

/**
 * Deleting an endpoint (issue 15): the endpoint is gone from every endpoint read and receives nothing more, but its
 * deliveries and their attempts stay readable under their events, marked `endpointDeleted`; what was pending is
 * cancelled; a send in flight finishes and is recorded without an error. Real server, worker and receivers; one send
 * per endpoint at a time, so a send held open by the receiver keeps the endpoint's next delivery queued (pending).
 */

const delivery = {
  worker: true,
  timeout: Duration.seconds(5),
  maxAttempts: 2,
  backoffBase: Duration.millis(20),
  backoffMax: Duration.millis(100),
  concurrency: 8,
  endpointConcurrency: 1,
  tenantConcurrency: 8,
  pollInterval: Duration.millis(100),
  leaseMargin: Duration.seconds(30)
}

interface LogEntry {
  readonly level: string
  readonly message: string
  /** What became of an attempt ("delivery attempt" lines). */
  readonly state?: string
}

/** The server's log entries from index `from` on. */
const logsSince = (from: number) =>
  Effect.map(TestServer, ({ logs }) => logs.slice(from).map((line) => JSON.parse(line) as LogEntry))

const logCount = Effect.map(TestServer, ({ logs }) => logs.length)

/** Asserts that nothing since `from` was logged as an error, nor as a failure to record an attempt. */
const assertNoTroubleLogged = (from: number) =>
  Effect.gen(function* () {
    const entries = yield* logsSince(from)
    const trouble = entries.filter(
      (e) => e.level === "error" || e.level === "fatal" || /could not|lease lost/.test(e.message)
    )
    assert.deepStrictEqual(trouble, [], JSON.stringify(trouble))
  })

/** What a receiver does with each request, by the `mode` of the event's data. */
const modeOf = (received: Received): string =>
  (JSON.parse(received.body) as { readonly data: { readonly mode?: string } }).data.mode ?? "ok"

/** The delivery of `eventId` to `endpointId`, through the API. */
const deliveryTo = (api: Api, eventId: string, endpointId: string) =>
  api.deliveries.listForEvent({ params: { id: eventId } }).pipe(
    Effect.map(({ data }) => data.find((d) => d.endpointId === endpointId)),
    Effect.orDie
  )

/** The delivery of `eventId` to `endpointId`, once no longer pending. */
const settledTo = (api: Api, eventId: string, endpointId: string) =>
  eventually(
    "the delivery to settle",
    Effect.map(deliveryTo(api, eventId, endpointId), (d) => (d === undefined || d.status === "pending" ? undefined : d))
  )

/**
 * The delivery of `eventId` to `endpointId` with its attempts, once it has one, read again after that: one read of a
 * delivery is two statements, and the attempt may commit between them.
 */
const attemptRecorded = (api: Api, eventId: string, endpointId: string) =>
  Effect.gen(function* () {
    const found = yield* deliveryTo(api, eventId, endpointId)
    const read = api.deliveries.get({ params: { id: found?.id ?? "" } }).pipe(Effect.orDie)
    yield* eventually(
      "the attempt to be recorded",
      Effect.map(read, (d) => (d.attempts.length > 0 ? d : undefined))
    )
    return yield* read
  })

const endpointRow = (id: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{
      readonly deleted: boolean
      readonly secret: string | null
      readonly previous_secret: string | null
      readonly previous_secret_expires_at: Date | null
      readonly enabled: boolean
      readonly disabled_reason: string | null
    }>`
      SELECT deleted_at IS NOT NULL AS deleted, secret, previous_secret, previous_secret_expires_at, enabled,
             disabled_reason
      FROM endpoints WHERE id = ${id}`
    return row
  }).pipe(Effect.orDie)

// Debug: the worker's "delivery attempt" line tells what became of an attempt with nothing left to read it back from.
layer(testServerWithSql({ config: { delivery, logLevel: "Debug" } }), { excludeTestServices: true })(
  "deleting an endpoint",
  (it) => {
    it.effect(
      "its reads 404, it gets no new events, its pending deliveries are cancelled, its history stays readable, its secrets are erased",
      () =>
        Effect.gen(function* () {
          const release = yield* Deferred.make<void>()
          const receiver = yield* makeReceiver(async (_, received, res) => {
            const mode = modeOf(received)
            if (mode === "hold") await Effect.runPromise(Deferred.await(release))
            answer(res, mode === "fail" ? 500 : 204)
          })
          const { api, apiKey, endpointId } = yield* tenantWithEndpoint(receiver.url)
          // A second endpoint of the same tenant, which stays.
          const keptReceiver = yield* makeReceiver((_, __, res) => answer(res, 204))
          const kept = yield* api.endpoints.create({ payload: { url: keptReceiver.url } })
          // Rotated, so that it has a previous secret too.
          const rotated = yield* api.endpoints.rotateSecret({ params: { id: endpointId } })
          assert.isNotNull(rotated.previousSecret)

          const ok = yield* publish(api, "order.created", { mode: "ok" })
          const failed = yield* publish(api, "order.created", { mode: "fail" })
          const okBefore = yield* settledTo(api, ok.event.id, endpointId)
          const failedBefore = yield* settledTo(api, failed.event.id, endpointId)
          assert.deepStrictEqual([okBefore?.status, failedBefore?.status], ["succeeded", "failed"])
          assert.isFalse(okBefore?.endpointDeleted)
          // One send held open by the receiver: the endpoint's next delivery waits its turn (pending, not claimed).
          const held = yield* publish(api, "order.created", { mode: "hold" })
          yield* eventually(
            "the held send to arrive",
            Effect.sync(() => (receiver.requests.some((r) => modeOf(r) === "hold") ? true : undefined))
          )
          const queued = yield* publish(api, "order.created", { mode: "queued" })
          assert.strictEqual((yield* deliveryTo(api, queued.event.id, endpointId))?.status, "pending")
          const logsFrom = yield* logCount

          const path = `/v1/endpoints/${endpointId}`
          const deleted = yield* request(path, { method: "DELETE", bearer: apiKey })
          assert.strictEqual(deleted.status, 204, deleted.text)

          // Every read of the endpoint: 404, as for an id that never existed; a second DELETE too.
          expectProblem(yield* request(path, { bearer: apiKey }), 404)
          expectProblem(yield* request(path, { method: "DELETE", bearer: apiKey }), 404)
          expectProblem(yield* request(path, { method: "PATCH", bearer: apiKey, json: { description: "x" } }), 404)
          expectProblem(yield* request(`${path}/secret`, { bearer: apiKey }), 404)
          expectProblem(yield* request(`${path}/secret/rotate`, { bearer: apiKey, json: {} }), 404)
          expectProblem(yield* request(`${path}/deliveries`, { bearer: apiKey }), 404)
          const since = { since: "2000-01-01T00:00:00Z" }
          expectProblem(yield* request(`${path}/recover`, { bearer: apiKey, json: since }), 404)
          const listed = yield* api.endpoints.list({ query: {} })
          assert.deepStrictEqual(
            listed.data.map((e) => e.id),
            [kept.id]
          )

          // Its secrets are erased; the row stays, marked deleted.
          const row = yield* endpointRow(endpointId)
          assert.deepStrictEqual(
            [row?.deleted, row?.secret, row?.previous_secret, row?.previous_secret_expires_at],
            [true, null, null, null]
          )

          // The history stays readable under the events, marked; the queued delivery was cancelled, never sent.
          const cancelled = yield* deliveryTo(api, queued.event.id, endpointId)
          assert.deepStrictEqual(
            [cancelled?.status, cancelled?.lastError, cancelled?.attemptCount, cancelled?.endpointDeleted],
            ["cancelled", deletedEndpointError, 0, true]
          )
          const okAfter = yield* deliveryTo(api, ok.event.id, endpointId)
          assert.deepStrictEqual({ ...okAfter, endpointDeleted: false }, okBefore)
          assert.isTrue(okAfter?.endpointDeleted)
          const failedAfter = yield* api.deliveries.get({ params: { id: failedBefore?.id ?? "" } })
          assert.deepStrictEqual(
            [failedAfter.status, failedAfter.endpointDeleted, failedAfter.attempts.map((a) => a.outcome)],
            ["failed", true, ["failed", "failed"]]
          )
          // Nothing can be sent to it any more: retrying is refused (the delivery exists, its endpoint does not).
          const retry = expectProblem(
            yield* request(`/v1/deliveries/${failedAfter.id}/retry`, { bearer: apiKey, json: {} }),
            409
          )
          assert.include(String(retry.detail), "deleted")

          // A new event goes to the endpoint that is left, and only there.
          const after = yield* publish(api, "order.created", { mode: "ok" })
          assert.strictEqual(after.deliveriesQueued, 1)
          const afterDeliveries = yield* api.deliveries.listForEvent({ params: { id: after.event.id } })
          assert.deepStrictEqual(
            afterDeliveries.data.map((d) => d.endpointId),
            [kept.id]
          )
          yield* settled(api, after.event.id)

          // The held send finishes now: its attempt is recorded, the delivery stays cancelled, nothing logs an error.
          yield* Deferred.succeed(release, undefined)
          const recorded = yield* attemptRecorded(api, held.event.id, endpointId)
          assert.deepStrictEqual(
            [recorded.status, recorded.lastError, recorded.attemptCount, recorded.lastStatus, recorded.endpointDeleted],
            ["cancelled", deletedEndpointError, 1, 204, true]
          )
          assert.deepStrictEqual(
            recorded.attempts.map((a) => [a.attempt, a.outcome, a.statusCode]),
            [[1, "succeeded", 204]]
          )
          // The receiver of the deleted endpoint never got the queued event nor the later one.
          assert.deepStrictEqual(receiver.requests.map(modeOf), ["ok", "fail", "fail", "hold"])
          yield* assertNoTroubleLogged(logsFrom)
        }).pipe(Effect.orDie)
    )

    it.effect(
      "deleted while its send is in flight and the receiver answers 410: recorded, no error, still deleted",
      () =>
        Effect.gen(function* () {
          const release = yield* Deferred.make<void>()
          const receiver = yield* makeReceiver(async (_, __, res) => {
            await Effect.runPromise(Deferred.await(release))
            answer(res, 410)
          })
          const { api, apiKey, endpointId } = yield* tenantWithEndpoint(receiver.url)
          const event = yield* publish(api)
          yield* eventually(
            "the send in flight",
            Effect.sync(() => (receiver.requests.length === 1 ? true : undefined))
          )
          const logsFrom = yield* logCount
          assert.strictEqual(
            (yield* request(`/v1/endpoints/${endpointId}`, { method: "DELETE", bearer: apiKey })).status,
            204
          )
          yield* Deferred.succeed(release, undefined)

          const recorded = yield* attemptRecorded(api, event.event.id, endpointId)
          assert.deepStrictEqual(
            [recorded.status, recorded.lastError, recorded.attemptCount, recorded.endpointDeleted],
            ["cancelled", deletedEndpointError, 1, true]
          )
          assert.deepStrictEqual(
            recorded.attempts.map((a) => [a.outcome, a.statusCode]),
            [["gone", 410]]
          )
          // The 410 does not turn the deleted endpoint into a disabled one: it stays as its deletion left it.
          const row = yield* endpointRow(endpointId)
          assert.deepStrictEqual(
            [row?.deleted, row?.enabled, row?.disabled_reason, row?.secret],
            [true, true, null, null]
          )
          expectProblem(yield* request(`/v1/endpoints/${endpointId}`, { bearer: apiKey }), 404)
          yield* assertNoTroubleLogged(logsFrom)
        }).pipe(Effect.orDie)
    )

    it.effect(
      "a delivery queued for it after all (a publish racing the deletion) is cancelled at claim, never sent",
      () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          const receiver = yield* makeReceiver((_, __, res) => answer(res, 204))
          const { api, apiKey, tenantId, endpointId } = yield* tenantWithEndpoint(receiver.url)
          assert.strictEqual(
            (yield* request(`/v1/endpoints/${endpointId}`, { method: "DELETE", bearer: apiKey })).status,
            204
          )
          const event = yield* publish(api)
          assert.strictEqual(event.deliveriesQueued, 0)
          // What a publish whose statement read the endpoint just before the deletion committed leaves behind.
          yield* sql`
        INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id)
        VALUES ('dlv_' || codex_ulid(), ${tenantId}, ${event.event.id}, ${endpointId})`
          const cancelled = yield* settled(api, event.event.id)
          assert.deepStrictEqual(
            [cancelled.status, cancelled.lastError, cancelled.attemptCount, cancelled.endpointDeleted],
            ["cancelled", deletedEndpointError, 0, true]
          )
          assert.strictEqual(receiver.requests.length, 0)
        }).pipe(Effect.orDie)
    )

    it.effect("a tenant deleted (its rows cascade) while a send is in flight: nothing to record, and no error", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const release = yield* Deferred.make<void>()
        const receiver = yield* makeReceiver(async (_, __, res) => {
          await Effect.runPromise(Deferred.await(release))
          answer(res, 204)
        })
        const { api, tenantId } = yield* tenantWithEndpoint(receiver.url)
        yield* publish(api)
        yield* eventually(
          "the send in flight",
          Effect.sync(() => (receiver.requests.length === 1 ? true : undefined))
        )
        const logsFrom = yield* logCount
        yield* sql`DELETE FROM tenants WHERE id = ${tenantId}`
        yield* Deferred.succeed(release, undefined)
        const line = yield* eventually(
          "the attempt's outcome to be logged",
          Effect.map(logsSince(logsFrom), (entries) => entries.find((e) => e.message === "delivery attempt"))
        )
        assert.strictEqual(line.state, "delivery deleted")
        yield* assertNoTroubleLogged(logsFrom)
      }).pipe(Effect.orDie)
    )
  }
)
