import { assert, layer } from "@effect/vitest"
import { Duration, Effect, Schema } from "effect"
import { Webhook } from "standardwebhooks"
import { DeliveryRecoveredData } from "../src/domain/OperationalEvents.ts"
import { fastWorker, publish } from "./support/deliveryApi.ts"
import { apiClient, createTenant } from "./support/http.ts"
import { isDefined, poll } from "./support/poll.ts"
import { answer, makeReceiver, type Receiver, verifyHeaders } from "./support/receiver.ts"
import { testServerWithSql } from "./support/sharedDatabase.ts"

/**
 * Auto-disable (issue 19): an endpoint whose attempts have all failed for ENDPOINT_DISABLE_AFTER is disabled (reason
 * `failing`), its pending deliveries wait, and enabling it sends them all; the first success after the failures is
 * `codex.delivery.recovered`. The real server and worker on the real database, ENDPOINT_DISABLE_AFTER shortened to
 * a second, the circuit's open period to 100 ms (so that attempts keep coming), and plenty of attempts.
 */

const disableAfter = Duration.seconds(1)
const delivery = fastWorker({
  maxAttempts: 1000,
  backoffBase: Duration.millis(20),
  backoffMax: Duration.millis(100),
  disableAfter
})
const breaker = {
  failureThreshold: 5,
  openBase: Duration.millis(100),
  openMax: Duration.millis(200),
  redisPrefix: "codex:circuit:"
}

interface Received {
  readonly type: string
  readonly data: Record<string, unknown>
}

const verified = (receiver: Receiver, secret: string): ReadonlyArray<Received> =>
  receiver.requests.map((r) => new Webhook(secret).verify(r.body, verifyHeaders(r)) as Received)

layer(testServerWithSql({ config: { delivery, breaker } }), { excludeTestServices: true })(
  "endpoints that stay dead",
  (it) => {
    it.effect(
      "disabled after ENDPOINT_DISABLE_AFTER of failures, reported signed; its deliveries wait; enabled again, all are sent, and the recovery is reported",
      () =>
        Effect.gen(function* () {
          const tenant = yield* createTenant("Dead endpoint")
          const api = yield* apiClient(tenant.apiKey)
          const watcher = yield* makeReceiver((_, __, res) => answer(res, 204))
          const state = { up: false }
          const dead = yield* makeReceiver((_, __, res) => answer(res, state.up ? 204 : 500))
          const watch = yield* api.endpoints.create({ payload: { url: watcher.url, eventTypes: ["codex.*"] } })
          const { secret } = yield* api.endpoints.getSecret({ params: { id: watch.id } })
          const endpoint = yield* api.endpoints.create({ payload: { url: dead.url, eventTypes: ["order.*"] } })

          const events = []
          for (let i = 0; i < 5; i++) events.push((yield* publish(api, "order.created", { i })).event.id)

          const disabled = yield* poll(
            "codex.endpoint.disabled (failing)",
            Effect.sync(() =>
              verified(watcher, secret).find(
                (w) => w.type === "codex.endpoint.disabled" && w.data.endpointId === endpoint.id
              )
            ),
            isDefined,
            { timeoutMs: 20_000 }
          )
          assert.deepStrictEqual(disabled.data, { endpointId: endpoint.id, reason: "failing" })
          const read = yield* api.endpoints.get({ params: { id: endpoint.id } })
          assert.isFalse(read.enabled)

          // Its deliveries wait: pending, not cancelled; nothing more is sent to it while it is disabled.
          const pendingOf = api.deliveries
            .listForEndpoint({ params: { id: endpoint.id }, query: { limit: 100 } })
            .pipe(Effect.map((page) => page.data))
          const waiting = yield* pendingOf
          assert.strictEqual(waiting.length, events.length)
          assert.isTrue(
            waiting.every((d) => d.status === "pending"),
            JSON.stringify(waiting.map((d) => d.status))
          )
          // Other deliveries go on meanwhile (two more operational events reach the watcher, each claimed after the
          // disable), and none reaches the disabled endpoint.
          const sentWhileDisabled = dead.requests.length
          for (const name of ["first", "second"]) {
            const other = yield* api.endpoints.create({ payload: { url: watcher.url, description: name } })
            yield* poll(
              `the watcher to hear of the ${name} new endpoint`,
              Effect.sync(() => verified(watcher, secret).some((w) => w.data.endpointId === other.id)),
              (heard) => heard
            )
          }
          assert.strictEqual(dead.requests.length, sentWhileDisabled)

          // The receiver is back; enabling the endpoint sends every waiting delivery.
          state.up = true
          yield* api.endpoints.update({ params: { id: endpoint.id }, payload: { enabled: true } })
          const delivered = yield* poll(
            "every waiting delivery to be sent",
            pendingOf,
            (all) => all.every((d) => d.status === "succeeded"),
            { timeoutMs: 20_000 }
          )
          assert.sameMembers(
            delivered.map((d) => d.eventId),
            events
          )

          const recovered = yield* poll(
            "codex.delivery.recovered",
            Effect.sync(() =>
              verified(watcher, secret).find(
                (w) => w.type === "codex.delivery.recovered" && w.data.endpointId === endpoint.id
              )
            ),
            isDefined
          )
          const data = Schema.decodeUnknownSync(DeliveryRecoveredData)(recovered.data)
          assert.include(
            delivered.map((d) => d.id),
            data.deliveryId
          )
          // The streak that ended: restarted when the tenant enabled the endpoint (after it was disabled).
          assert.isAbove(Date.parse(data.failingSince), Date.parse(read.updatedAt), "restarted by the enabling")
          // Enabled by the tenant: reported as such too.
          assert.isTrue(
            verified(watcher, secret).some(
              (w) => w.type === "codex.endpoint.enabled" && w.data.endpointId === endpoint.id
            )
          )
        })
    )
  }
)
