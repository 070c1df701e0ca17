import { assert, layer } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import { deliveryTo, fastWorker, publish, settledTo, tenantWithEndpoint } from "./support/deliveryApi.ts"
import { poll } from "./support/poll.ts"
import { answer, makeReceiver, type Receiver } from "./support/receiver.ts"
import { testServer } from "./support/testServer.ts"

/**
 * 410 Gone (README "Webhook delivery"): the receiver asks to stop, so its endpoint is disabled and every delivery
 * still pending for it is cancelled in the same transaction, and nothing of any other endpoint is. One send per
 * endpoint at a time (DELIVERY_ENDPOINT_CONCURRENCY=1), so the endpoint's other deliveries are queued, unsent, when
 * the 410 arrives; the other endpoints hold their requests meanwhile, so theirs are pending (in flight and queued).
 */

const goneReason = "cancelled: the endpoint answered 410 Gone and was disabled"

const requestsAt = (receiver: Receiver, count: number, what: string) =>
  poll(
    what,
    Effect.sync(() => receiver.requests.length),
    (n) => n === count
  )

layer(testServer({ config: { delivery: fastWorker({ endpointConcurrency: 1 }) } }), { excludeTestServices: true })(
  "410 Gone",
  (it) => {
    it.effect(
      "cancels the endpoint's other pending deliveries with the 410 (and no one else's); sends them nothing",
      () =>
        Effect.gen(function* () {
          const releaseGone = yield* Deferred.make<void>()
          const releaseOthers = yield* Deferred.make<void>()
          const goneReceiver = yield* makeReceiver(async (_, __, res) => {
            await Effect.runPromise(Deferred.await(releaseGone))
            answer(res, 410)
          })
          const holding = () =>
            makeReceiver(async (_, __, res) => {
              await Effect.runPromise(Deferred.await(releaseOthers))
              answer(res, 204)
            })
          const siblingReceiver = yield* holding()
          const neighbourReceiver = yield* holding()

          // Tenant A: the endpoint that will answer 410, and a sibling endpoint of the same tenant.
          const a = yield* tenantWithEndpoint(goneReceiver.url)
          const sibling = yield* a.api.endpoints.create({ payload: { url: siblingReceiver.url } }).pipe(Effect.orDie)
          // Tenant B, unrelated.
          const b = yield* tenantWithEndpoint(neighbourReceiver.url)

          const events = [yield* publish(a.api, "order.created", { n: 1 })]
          yield* requestsAt(goneReceiver, 1, "the first delivery to the gone endpoint in flight")
          yield* requestsAt(siblingReceiver, 1, "the first delivery to the sibling in flight")
          events.push(
            yield* publish(a.api, "order.created", { n: 2 }),
            yield* publish(a.api, "order.created", { n: 3 })
          )
          const neighbourEvents = [
            yield* publish(b.api, "order.created", { n: 1 }),
            yield* publish(b.api, "order.created", { n: 2 })
          ]
          yield* requestsAt(neighbourReceiver, 1, "the neighbour's first delivery in flight")
          const [first, ...queued] = events.map((e) => e.event.id)
          for (const eventId of queued) {
            const row = yield* deliveryTo(a.api, eventId, a.endpointId)
            assert.deepStrictEqual([row.status, row.attemptCount], ["pending", 0], "queued behind the one in flight")
          }

          // The 410 arrives: the delivery fails, its endpoint is disabled, and its queued deliveries are cancelled
          // with the 410's reason (not later, one by one, as deliveries of a disabled endpoint).
          yield* Deferred.succeed(releaseGone, undefined)
          const gone = yield* settledTo(a.api, first ?? "", a.endpointId)
          assert.deepStrictEqual([gone.status, gone.attemptCount, gone.lastStatus], ["failed", 1, 410])
          for (const eventId of queued) {
            const row = yield* deliveryTo(a.api, eventId, a.endpointId)
            assert.deepStrictEqual([row.status, row.attemptCount, row.lastError], ["cancelled", 0, goneReason], eventId)
          }
          assert.isFalse((yield* a.api.endpoints.get({ params: { id: a.endpointId } }).pipe(Effect.orDie)).enabled)

          // The sibling endpoint's deliveries (one in flight, two queued) and the other tenant's are untouched.
          for (const eventId of events.map((e) => e.event.id)) {
            const row = yield* deliveryTo(a.api, eventId, sibling.id)
            assert.strictEqual(row.status, "pending", `sibling ${eventId}`)
          }
          for (const event of neighbourEvents) {
            assert.strictEqual((yield* deliveryTo(b.api, event.event.id, b.endpointId)).status, "pending")
          }

          // Let them go: everything of theirs is delivered, and the gone endpoint never got a second request.
          yield* Deferred.succeed(releaseOthers, undefined)
          for (const [api, eventIds, endpointId] of [
            [a.api, events.map((e) => e.event.id), sibling.id],
            [b.api, neighbourEvents.map((e) => e.event.id), b.endpointId]
          ] as const) {
            for (const eventId of eventIds) {
              yield* poll(
                `delivery of ${eventId} to ${endpointId}`,
                deliveryTo(api, eventId, endpointId),
                (row) => row.status === "succeeded"
              )
            }
          }
          assert.strictEqual(siblingReceiver.requests.length, 3)
          assert.strictEqual(neighbourReceiver.requests.length, 2)
          assert.strictEqual(goneReceiver.requests.length, 1)
          // And nothing more is queued for it: the next event goes to the sibling alone.
          assert.strictEqual((yield* publish(a.api, "order.created", { n: 4 })).deliveriesQueued, 1)
        })
    )
  }
)
