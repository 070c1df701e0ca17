import { assert, layer } from "@effect/vitest"
import { Deferred, Duration, Effect } from "effect"
import { deliveryOf, fastWorker, publish, settled, tenantWithEndpoint } from "./support/deliveryApi.ts"
import { createTenant, request } from "./support/http.ts"
import { poll } from "./support/poll.ts"
import { expectProblem } from "./support/problems.ts"
import { answer, makeReceiver } from "./support/receiver.ts"
import { testServerWithSql } from "./support/sharedDatabase.ts"

/**
 * The delivery API beyond reading one delivery: an endpoint's deliveries (paged, filtered), manual retry and bulk
 * recovery. Real server with its worker, real receivers, the real database; two attempts per delivery keep it quick.
 */

const delivery = fastWorker({
  // Long enough for the held send below to outlast two API calls on a loaded machine (at 500 ms it timed out in CI,
  // and its retry was a second attempt); no test here waits for a timeout.
  timeout: Duration.seconds(10),
  maxAttempts: 2,
  backoffBase: Duration.millis(20),
  backoffMax: Duration.millis(100)
})

/** A receiver that fails while `failing.value` is true. */
const switchableReceiver = () =>
  Effect.gen(function* () {
    const failing = { value: true }
    const receiver = yield* makeReceiver((_, __, res) => answer(res, failing.value ? 500 : 204))
    return { receiver, failing }
  })

layer(testServerWithSql({ config: { delivery } }), { excludeTestServices: true })("the delivery API", (it) => {
  it.effect("GET /v1/endpoints/{id}/deliveries: newest first, cursor pages, status filter, tenant-scoped", () =>
    Effect.gen(function* () {
      const receiver = yield* makeReceiver((_, received, res) =>
        answer(res, received.body.includes('"fail"') ? 500 : 204)
      )
      const { api, apiKey, endpointId } = yield* tenantWithEndpoint(receiver.url)
      const published = []
      for (const mode of ["ok", "fail", "ok"]) {
        const event = yield* publish(api, "order.created", { mode })
        published.push(event.event.id)
        yield* settled(api, event.event.id)
      }
      const [okOld = "", failed = "", okNew = ""] = published

      const first = yield* api.deliveries.listForEndpoint({ params: { id: endpointId }, query: { limit: 2 } })
      assert.deepStrictEqual(
        first.data.map((d) => [d.eventId, d.status]),
        [
          [okNew, "succeeded"],
          [failed, "failed"]
        ]
      )
      assert.isNotNull(first.nextCursor)
      const second = yield* api.deliveries.listForEndpoint({
        params: { id: endpointId },
        query: { limit: 2, cursor: first.nextCursor ?? "" }
      })
      assert.deepStrictEqual(
        second.data.map((d) => d.eventId),
        [okOld]
      )
      assert.isNull(second.nextCursor)

      const onlyFailed = yield* api.deliveries.listForEndpoint({
        params: { id: endpointId },
        query: { status: "failed" }
      })
      assert.deepStrictEqual(
        onlyFailed.data.map((d) => [d.eventId, d.status, d.attemptCount]),
        [[failed, "failed", 2]]
      )

      const path = `/v1/endpoints/${endpointId}/deliveries`
      const badStatus = expectProblem(yield* request(`${path}?status=lost`, { bearer: apiKey }), 400)
      assert.strictEqual(badStatus.title, "Bad Request")
      // Another tenant, or an id that is not an endpoint id: both 404, nothing leaks.
      const other = yield* createTenant("Neighbour")
      expectProblem(yield* request(path, { bearer: other.apiKey }), 404)
      expectProblem(yield* request("/v1/endpoints/ep_nope/deliveries", { bearer: apiKey }), 404)
    }).pipe(Effect.orDie)
  )

  it.effect("POST /v1/deliveries/{id}/retry: a failed delivery gets one more attempt and is delivered", () =>
    Effect.gen(function* () {
      const { receiver, failing } = yield* switchableReceiver()
      const { api } = yield* tenantWithEndpoint(receiver.url)
      const event = yield* publish(api)
      const failed = yield* settled(api, event.event.id)
      assert.deepStrictEqual([failed.status, failed.attemptCount], ["failed", 2])

      failing.value = false
      const queued = yield* api.deliveries.retry({ params: { id: failed.id } })
      assert.strictEqual(queued.status, "pending")
      assert.isNotNull(queued.nextAttemptAt)
      const done = yield* settled(api, event.event.id)
      assert.deepStrictEqual([done.status, done.attemptCount], ["succeeded", 3])
      const { attempts } = yield* api.deliveries.get({ params: { id: failed.id } })
      assert.deepStrictEqual(
        attempts.map((a) => [a.attempt, a.outcome]),
        [
          [1, "failed"],
          [2, "failed"],
          [3, "succeeded"]
        ]
      )
      // Every request of this delivery carried the same webhook-id: receivers deduplicate on it.
      assert.deepStrictEqual(new Set(receiver.requests.map((r) => r.headers["webhook-id"])), new Set([event.event.id]))
    }).pipe(Effect.orDie)
  )

  it.effect("retry while the delivery is pending (in flight) queues nothing more: retrying twice sends once", () =>
    Effect.gen(function* () {
      const release = yield* Deferred.make<void>()
      const receiver = yield* makeReceiver(async (index, _, res) => {
        // The first send is held open until the test has retried twice; later sends answer at once.
        if (index === 0) await Effect.runPromise(Deferred.await(release))
        answer(res, 204)
      })
      const { api } = yield* tenantWithEndpoint(receiver.url)
      const event = yield* publish(api)
      yield* poll(
        "first send in flight",
        Effect.sync(() => receiver.requests.length),
        (n) => n === 1
      )
      const row = yield* deliveryOf(api, event.event.id)
      if (row === undefined) return assert.fail("no delivery")
      for (let i = 0; i < 2; i++) {
        const unchanged = yield* api.deliveries.retry({ params: { id: row.id } })
        assert.deepStrictEqual([unchanged.status, unchanged.attemptCount], ["pending", 0])
      }
      yield* Deferred.succeed(release, undefined)
      const done = yield* settled(api, event.event.id)
      assert.deepStrictEqual([done.status, done.attemptCount], ["succeeded", 1])
      assert.strictEqual(receiver.requests.length, 1)

      // A delivered one can be sent again on request (a receiver that lost it): one more attempt, same webhook-id.
      const again = yield* api.deliveries.retry({ params: { id: row.id } })
      assert.strictEqual(again.status, "pending")
      assert.isNull(again.deliveredAt)
      const resent = yield* settled(api, event.event.id)
      assert.deepStrictEqual([resent.status, resent.attemptCount], ["succeeded", 2])
      assert.strictEqual(receiver.requests.length, 2)
      assert.strictEqual(receiver.requests[1]?.headers["webhook-id"], event.event.id)
    }).pipe(Effect.orDie)
  )

  it.effect("retry and recover refuse a disabled endpoint (409); unknown and foreign ids are 404", () =>
    Effect.gen(function* () {
      const { receiver } = yield* switchableReceiver()
      const { api, apiKey, endpointId } = yield* tenantWithEndpoint(receiver.url)
      const event = yield* publish(api)
      const failed = yield* settled(api, event.event.id)
      yield* api.endpoints.update({ params: { id: endpointId }, payload: { enabled: false } })

      const retry = expectProblem(
        yield* request(`/v1/deliveries/${failed.id}/retry`, { bearer: apiKey, json: {} }),
        409
      )
      assert.match(String(retry.detail), /disabled/)
      const since = { since: "2000-01-01T00:00:00Z" }
      expectProblem(yield* request(`/v1/endpoints/${endpointId}/recover`, { bearer: apiKey, json: since }), 409)
      assert.strictEqual((yield* deliveryOf(api, event.event.id))?.status, "failed")

      const other = yield* createTenant("Neighbour")
      expectProblem(yield* request(`/v1/deliveries/${failed.id}/retry`, { bearer: other.apiKey, json: {} }), 404)
      expectProblem(yield* request(`/v1/endpoints/${endpointId}/recover`, { bearer: other.apiKey, json: since }), 404)
      expectProblem(yield* request("/v1/deliveries/dlv_nope/retry", { bearer: apiKey, json: {} }), 404)
      const badSince = { since: "yesterday" }
      expectProblem(yield* request(`/v1/endpoints/${endpointId}/recover`, { bearer: apiKey, json: badSince }), 400)
    }).pipe(Effect.orDie)
  )

  it.effect("POST /v1/endpoints/{id}/recover: re-queues the failed deliveries created since a time, no others", () =>
    Effect.gen(function* () {
      const { receiver, failing } = yield* switchableReceiver()
      const { api, endpointId } = yield* tenantWithEndpoint(receiver.url)
      const older = yield* publish(api, "order.created", { n: 1 })
      assert.strictEqual((yield* settled(api, older.event.id)).status, "failed")
      const newer = yield* publish(api, "order.created", { n: 2 })
      assert.strictEqual((yield* settled(api, newer.event.id)).status, "failed")
      // A healthy endpoint of the same tenant: its delivered deliveries are not touched.
      const healthyReceiver = yield* makeReceiver((_, __, res) => answer(res, 204))
      const healthy = yield* api.endpoints.create({ payload: { url: healthyReceiver.url } })

      failing.value = false
      const since = newer.event.createdAt
      const recovered = yield* api.deliveries.recover({ params: { id: endpointId }, payload: { since } })
      assert.strictEqual(recovered.queued, 1)
      assert.strictEqual((yield* settled(api, newer.event.id)).status, "succeeded")
      assert.strictEqual((yield* deliveryOf(api, older.event.id))?.status, "failed")
      const none = yield* api.deliveries.recover({ params: { id: healthy.id }, payload: { since } })
      assert.strictEqual(none.queued, 0)

      const all = yield* api.deliveries.recover({
        params: { id: endpointId },
        payload: { since: "2000-01-01T00:00:00Z" }
      })
      assert.strictEqual(all.queued, 1)
      assert.strictEqual((yield* settled(api, older.event.id)).status, "succeeded")
    }).pipe(Effect.orDie)
  )
})
