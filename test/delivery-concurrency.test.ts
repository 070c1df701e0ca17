import type { ServerResponse } from "node:http"
import { assert, layer } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { fastWorker, publish } from "./support/deliveryApi.ts"
import { apiClient, createTenant } from "./support/http.ts"
import { poll } from "./support/poll.ts"
import { answer, makeReceiver } from "./support/receiver.ts"
import { testServer } from "./support/testServer.ts"

/**
 * DELIVERY_CONCURRENCY: at most that many sends in flight at once in the process, across all endpoints. Eight
 * endpoints with room for 4 sends each (32: the per-endpoint bulkhead is never the limit), receivers that hold every
 * request until the test answers it, one at a time: the receivers never see more than 3 requests at once, and the
 * worker refills the freed slot each time, until all are delivered. (The send timeout outlasts the test: a held
 * request never times out and frees its slot behind the test's back.)
 */

const cap = 3
const endpoints = 8
const events = 2

layer(
  testServer({
    config: { delivery: fastWorker({ concurrency: cap, endpointConcurrency: 4, timeout: Duration.seconds(30) }) }
  }),
  {
    excludeTestServices: true
  }
)("DELIVERY_CONCURRENCY", (it) => {
  it.effect(
    `at most ${cap} sends in flight across ${endpoints} endpoints; each freed slot is refilled; all delivered`,
    () =>
      Effect.gen(function* () {
        const held: Array<ServerResponse> = []
        let most = 0
        const receivers = yield* Effect.forEach(Array.from({ length: endpoints }), () =>
          makeReceiver((_, __, res) => {
            held.push(res)
            most = Math.max(most, held.length)
          })
        )
        const tenant = yield* createTenant("Concurrency cap")
        const api = yield* apiClient(tenant.apiKey)
        for (const receiver of receivers) {
          yield* api.endpoints.create({ payload: { url: receiver.url } }).pipe(Effect.orDie)
        }
        const published = yield* Effect.forEach(Array.from({ length: events }), (_, n) =>
          publish(api, "order.created", { n })
        )
        const total = endpoints * events
        assert.deepStrictEqual(
          published.map((p) => p.deliveriesQueued),
          [endpoints, endpoints]
        )

        // Every delivery is due at once: the worker fills exactly its cap, never more; answering one frees a slot,
        // which the next delivery takes.
        for (let answered = 0; answered < total; answered++) {
          const expected = Math.min(cap, total - answered)
          yield* poll(
            `${expected} sends in flight after ${answered} answered`,
            Effect.sync(() => {
              assert.isAtMost(held.length, cap, `more than ${cap} requests in flight at once`)
              return held.length
            }),
            (n) => n === expected
          )
          const next = held.shift()
          if (next !== undefined) answer(next, 204)
        }
        assert.strictEqual(most, cap)
        assert.strictEqual(
          receivers.reduce((sum, r) => sum + r.requests.length, 0),
          total,
          "one request per delivery"
        )
        for (const { event } of published) {
          const { data } = yield* poll(
            `the deliveries of ${event.id} recorded`,
            api.deliveries.listForEvent({ params: { id: event.id } }).pipe(Effect.orDie),
            (list) => list.data.every((d) => d.status === "succeeded")
          )
          assert.lengthOf(data, endpoints)
        }
      }),
    { timeout: 60_000 }
  )
})
