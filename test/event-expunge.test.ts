import { assert, layer } from "@effect/vitest"
import { Deferred, Duration, Effect, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { Event as EventSchema, PublishedEvent } from "../src/domain/Event.ts"
import { type Api, deliveryTo, fastWorker, publish, settledTo, tenantWithEndpoint } from "./support/deliveryApi.ts"
import { createTenant, request, type WireResponse } from "./support/http.ts"
import { poll } from "./support/poll.ts"
import { expectProblem } from "./support/problems.ts"
import { answer, headerOf, makeReceiver, type Received, type Receiver } from "./support/receiver.ts"
import { testServerWithSql } from "./support/sharedDatabase.ts"

/** README (expunging an event's data): the `lastError` of its cancelled deliveries, as promised (not read from the code). */
const expungedError = "cancelled: the event's data was expunged"

/**
 * Expunging an event's data (issue 21): `DELETE /v1/events/{id}/data` erases the payload and the response excerpts of
 * its attempts for good, keeps the metadata and the delivery history, cancels what is pending, and nothing of it is
 * sent afterwards. Real server, worker and receivers; the rows are read back from the database itself.
 */

// A held send is released by the test after the expunge's round trip: a loaded machine must not time it out first.
const delivery = fastWorker({
  timeout: Duration.seconds(60),
  maxAttempts: 2,
  backoffBase: Duration.millis(20),
  backoffMax: Duration.millis(100),
  endpointConcurrency: 1
})

/** What a receiver does with each request, by the `mode` of the event's data. */
const modeOf = (received: Received): string =>
  (JSON.parse(received.body) as { readonly data: { readonly mode?: string } }).data.mode ?? "ok"

/** The event ids (`webhook-id`) a receiver got. */
const eventIdsAt = (receiver: Receiver) => receiver.requests.map((r) => headerOf(r, "webhook-id"))

/**
 * A receiver that answers `fail` with a 500 whose body echoes the card, `hold` (when given a `release`) with a 200 and
 * such a body once released, and anything else with a 204.
 */
const scriptedReceiver = (release?: Deferred.Deferred<void>) =>
  makeReceiver(async (_, received, res) => {
    const mode = modeOf(received)
    if (mode === "fail") return answer(res, 500, {}, "receiver echo: card 4111")
    if (mode !== "hold" || release === undefined) return answer(res, 204)
    await Effect.runPromise(Deferred.await(release))
    answer(res, 200, {}, "receiver echo: held 4111")
  })

/** How many requests of event `id` the receiver got. */
const countOf = (receiver: Receiver, id: string) => eventIdsAt(receiver).filter((got) => got === id).length

const expunge = (apiKey: string, eventId: string, headers: Record<string, string> = {}) =>
  request(`/v1/events/${eventId}/data`, { method: "DELETE", bearer: apiKey, headers })

const decodeEvent = (response: WireResponse) => Schema.decodeUnknownSync(EventSchema)(JSON.parse(response.text))

/** The event's row as stored. */
const eventRow = (id: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{
      readonly data: string | null
      readonly expunged_at: Date | null
      readonly type: string
    }>`SELECT data::text AS data, data_expunged_at AS expunged_at, type FROM events WHERE id = ${id}`
    return row
  }).pipe(Effect.orDie)

/** Every response excerpt stored for the event's attempts (null ones included). */
const excerptsOf = (eventId: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ readonly excerpt: string | null }>`
      SELECT a.response_excerpt AS excerpt FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
      WHERE d.event_id = ${eventId} ORDER BY a.id`
    return rows.map((row) => row.excerpt)
  }).pipe(Effect.orDie)

/** The delivery of `eventId` to `endpointId` with its attempts, once it has `count` of them. */
const withAttempts = (api: Api, eventId: string, endpointId: string, count: number) =>
  Effect.gen(function* () {
    const found = yield* deliveryTo(api, eventId, endpointId)
    const read = api.deliveries.get({ params: { id: found.id } }).pipe(Effect.orDie)
    return yield* poll(`${count} attempt(s) recorded`, read, (d) => d.attempts.length >= count)
  })

layer(testServerWithSql({ config: { delivery } }), { excludeTestServices: true })("expunging an event's data", (it) => {
  it.effect(
    "the payload and excerpts are erased, the history stays, pending deliveries are cancelled and never sent",
    () =>
      Effect.gen(function* () {
        const release = yield* Deferred.make<void>()
        const failing = yield* scriptedReceiver()
        const busy = yield* scriptedReceiver(release)
        const { api, apiKey, endpointId } = yield* tenantWithEndpoint(failing.url)
        const other = yield* api.endpoints.create({ payload: { url: busy.url } })
        // The second endpoint's one slot is held by an earlier event, so the expunged event's delivery there waits.
        const held = yield* publish(api, "order.held", { mode: "hold" })
        yield* poll(
          "the held send",
          Effect.sync(() => eventIdsAt(busy)),
          (ids) => ids.includes(held.event.id)
        )
        const target = yield* publish(api, "order.created", { mode: "fail", card: "4111 1111 1111 1111" })
        const failed = yield* settledTo(api, target.event.id, endpointId)
        const failedBefore = yield* withAttempts(api, target.event.id, endpointId, 2)
        assert.deepStrictEqual(
          failedBefore.attempts.map((a) => [a.statusCode, a.responseExcerpt]),
          [
            [500, "receiver echo: card 4111"],
            [500, "receiver echo: card 4111"]
          ]
        )
        assert.strictEqual((yield* deliveryTo(api, target.event.id, other.id)).status, "pending")

        const response = yield* expunge(apiKey, target.event.id)
        assert.strictEqual(response.status, 200, response.text)
        const answered = decodeEvent(response)
        assert.deepStrictEqual(
          [answered.id, answered.type, answered.data, answered.occurredAt, answered.createdAt],
          [target.event.id, "order.created", null, target.event.occurredAt, target.event.createdAt]
        )
        assert.isNotNull(answered.expungedAt)

        // Gone from the database: the event's data and every excerpt of its attempts; the metadata stays.
        const row = yield* eventRow(target.event.id)
        assert.deepStrictEqual([row?.data, row?.type], [null, "order.created"])
        assert.strictEqual(row?.expunged_at?.toISOString(), answered.expungedAt)
        assert.deepStrictEqual(yield* excerptsOf(target.event.id), [null, null])

        // The history stays: both deliveries, the failed one with its two attempts (statuses kept), the pending one
        // cancelled, saying why.
        const failedAfter = yield* withAttempts(api, target.event.id, endpointId, 2)
        assert.deepStrictEqual(
          [failedAfter.id, failedAfter.status, failedAfter.attemptCount, failedAfter.lastStatus],
          [failed.id, "failed", 2, 500]
        )
        assert.deepStrictEqual(
          failedAfter.attempts.map((a) => [a.attempt, a.outcome, a.statusCode, a.responseExcerpt]),
          [
            [1, "failed", 500, null],
            [2, "failed", 500, null]
          ]
        )
        const cancelled = yield* deliveryTo(api, target.event.id, other.id)
        assert.deepStrictEqual(
          [cancelled.status, cancelled.lastError, cancelled.attemptCount, cancelled.nextAttemptAt],
          ["cancelled", expungedError, 0, null]
        )

        // Reads show it: the event, and the list.
        const read = yield* request(`/v1/events/${target.event.id}`, { bearer: apiKey })
        assert.strictEqual(read.text, response.text)
        const listed = yield* api.events.list({ query: { type: "order.created" } })
        assert.deepStrictEqual(
          listed.data.map((e) => [e.id, e.data, e.expungedAt]),
          [[target.event.id, null, answered.expungedAt]]
        )

        // Repeating it answers the same, the first expungedAt included.
        const again = yield* expunge(apiKey, target.event.id)
        assert.strictEqual(again.status, 200, again.text)
        assert.strictEqual(again.text, response.text)

        // Nothing of it can be sent any more: retry is refused, recover passes it over.
        const retry = expectProblem(
          yield* request(`/v1/deliveries/${failed.id}/retry`, { method: "POST", bearer: apiKey }),
          409
        )
        assert.include(String(retry.detail), "expunged")
        const retryCancelled = yield* request(`/v1/deliveries/${cancelled.id}/retry`, {
          method: "POST",
          bearer: apiKey
        })
        expectProblem(retryCancelled, 409)
        const recovered = yield* api.deliveries.recover({
          params: { id: endpointId },
          payload: { since: "2000-01-01T00:00:00Z" }
        })
        assert.strictEqual(recovered.queued, 0)
        assert.strictEqual((yield* deliveryTo(api, target.event.id, endpointId)).status, "failed")

        // The held send ends; a later event to that endpoint is delivered, the cancelled one never was.
        yield* Deferred.succeed(release, undefined)
        const later = yield* publish(api, "order.later", { mode: "ok" })
        yield* settledTo(api, later.event.id, other.id)
        assert.deepStrictEqual(eventIdsAt(busy), [held.event.id, later.event.id])
        assert.strictEqual(countOf(failing, target.event.id), 2)
        assert.strictEqual((yield* deliveryTo(api, target.event.id, other.id)).status, "cancelled")
      })
  )

  it.effect("404 for another tenant's event and for an unknown one; a body is refused; neither erases anything", () =>
    Effect.gen(function* () {
      const owner = yield* tenantWithEndpoint((yield* scriptedReceiver()).url)
      const event = yield* publish(owner.api, "order.created", { keep: "me" })
      const stranger = yield* createTenant("Stranger")
      expectProblem(yield* expunge(stranger.apiKey, event.event.id), 404)
      expectProblem(yield* expunge(owner.apiKey, "evt_0000000000000000000000000Z"), 404)
      expectProblem(yield* expunge(owner.apiKey, "not-an-id"), 404)
      const body = yield* request(`/v1/events/${event.event.id}/data`, {
        method: "DELETE",
        bearer: owner.apiKey,
        json: { id: event.event.id }
      })
      expectProblem(body, 400)
      const row = yield* eventRow(event.event.id)
      assert.deepStrictEqual([row?.data, row?.expunged_at], ['{"keep":"me"}', null])
      const read = yield* owner.api.events.get({ params: { id: event.event.id } })
      assert.deepStrictEqual([read.data, read.expungedAt], [{ keep: "me" }, null])
    })
  )

  it.effect("a keyed POST /v1/events replayed after the expunge answers data null and expungedAt", () =>
    Effect.gen(function* () {
      const { apiKey } = yield* tenantWithEndpoint((yield* scriptedReceiver()).url)
      const key = `expunge-replay-${Date.now()}`
      const body = { type: "order.created", data: { card: "4111" } }
      const first = yield* request("/v1/events", { bearer: apiKey, idempotencyKey: key, json: body })
      assert.strictEqual(first.status, 202, first.text)
      const published = Schema.decodeUnknownSync(PublishedEvent)(JSON.parse(first.text))
      const expunged = decodeEvent(yield* expunge(apiKey, published.event.id))

      const replay = yield* request("/v1/events", { bearer: apiKey, idempotencyKey: key, json: body })
      assert.strictEqual(replay.status, 202, replay.text)
      assert.strictEqual(replay.headers.get("idempotent-replayed"), "true")
      assert.notInclude(replay.text, "4111")
      const replayed = Schema.decodeUnknownSync(PublishedEvent)(JSON.parse(replay.text))
      assert.deepStrictEqual(replayed, {
        event: { ...published.event, data: null, expungedAt: expunged.expungedAt },
        deliveriesQueued: published.deliveriesQueued
      })
    })
  )

  it.effect("a keyed expunge replays its answer; an operational codex.* event can be expunged too", () =>
    Effect.gen(function* () {
      const { api, apiKey, endpointId } = yield* tenantWithEndpoint((yield* scriptedReceiver()).url)
      const listed = yield* api.events.list({ query: { type: "codex.endpoint.created" } })
      const created = listed.data.find((e) => e.data?.endpointId === endpointId)
      if (created === undefined) return assert.fail("codex.endpoint.created is not listed")
      const key = `expunge-key-${Date.now()}`
      const first = yield* expunge(apiKey, created.id, { "idempotency-key": key })
      assert.strictEqual(first.status, 200, first.text)
      const replay = yield* expunge(apiKey, created.id, { "idempotency-key": key })
      assert.strictEqual(replay.headers.get("idempotent-replayed"), "true")
      assert.strictEqual(replay.text, first.text)
      const read = yield* api.events.get({ params: { id: created.id } })
      assert.deepStrictEqual(
        [read.type, read.data, read.expungedAt],
        ["codex.endpoint.created", null, decodeEvent(first).expungedAt]
      )
      assert.strictEqual((yield* eventRow(created.id))?.data, null)
    })
  )

  it.effect("a send in flight finishes, but its answer's excerpt is not kept and the delivery stays cancelled", () =>
    Effect.gen(function* () {
      const release = yield* Deferred.make<void>()
      const receiver = yield* scriptedReceiver(release)
      const { api, apiKey, endpointId } = yield* tenantWithEndpoint(receiver.url)
      const event = yield* publish(api, "order.created", { mode: "hold", card: "4111" })
      yield* poll(
        "the send in flight",
        Effect.sync(() => eventIdsAt(receiver)),
        (ids) => ids.includes(event.event.id)
      )
      assert.strictEqual((yield* expunge(apiKey, event.event.id)).status, 200)
      yield* Deferred.succeed(release, undefined)
      const recorded = yield* withAttempts(api, event.event.id, endpointId, 1)
      assert.deepStrictEqual(
        [recorded.status, recorded.lastError, recorded.attemptCount, recorded.lastStatus],
        ["cancelled", expungedError, 1, 200],
        JSON.stringify(recorded)
      )
      assert.deepStrictEqual(
        recorded.attempts.map((a) => [a.outcome, a.statusCode, a.responseExcerpt]),
        [["succeeded", 200, null]]
      )
      assert.deepStrictEqual(yield* excerptsOf(event.event.id), [null])
    })
  )

  it.effect(
    "a delivery of an expunged event that gets back into the queue is cancelled by the worker, never sent",
    () =>
      Effect.gen(function* () {
        const receiver = yield* scriptedReceiver()
        const { api, apiKey, endpointId } = yield* tenantWithEndpoint(receiver.url)
        const event = yield* publish(api, "order.created", { mode: "fail" })
        const failed = yield* settledTo(api, event.event.id, endpointId)
        assert.strictEqual((yield* expunge(apiKey, event.event.id)).status, 200)
        // What a retry racing the expunge could leave behind (it read the event just before the expunge committed).
        const sql = yield* SqlClient.SqlClient
        yield* sql`
        UPDATE deliveries SET status = 'pending', next_attempt_at = now(), last_error = NULL WHERE id = ${failed.id}`
        const cancelled = yield* poll(
          "the worker to cancel it",
          deliveryTo(api, event.event.id, endpointId),
          (row) => row.status !== "pending"
        )
        assert.deepStrictEqual(
          [cancelled.status, cancelled.lastError, cancelled.attemptCount],
          ["cancelled", expungedError, 2]
        )
        // Its two attempts before the expunge, nothing since.
        assert.deepStrictEqual(eventIdsAt(receiver), [event.event.id, event.event.id])
        const later = yield* publish(api, "order.later", { mode: "ok" })
        yield* settledTo(api, later.event.id, endpointId)
        assert.deepStrictEqual(eventIdsAt(receiver), [event.event.id, event.event.id, later.event.id])
      }).pipe(Effect.orDie)
  )
})
