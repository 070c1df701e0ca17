import { assert, layer } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { Webhook } from "standardwebhooks"
import {
  DeliveryExhaustedData,
  EndpointDisabledData,
  EndpointRefData,
  EndpointStateData,
  operationalEventData,
  TestEventData
} from "../src/domain/OperationalEvents.ts"
import { fastWorker, publish } from "./support/deliveryApi.ts"
import { apiClient, createTenant, request } from "./support/http.ts"
import { isDefined, poll } from "./support/poll.ts"
import { expectProblem } from "./support/problems.ts"
import { answer, makeReceiver, type Receiver, verifyHeaders } from "./support/receiver.ts"
import { testServerWithSql } from "./support/sharedDatabase.ts"

/**
 * Operational events (issue 19): codex-api tells a tenant what happens to its endpoints, as ordinary signed events in
 * the tenant's own stream, to the endpoints that subscribe to `codex.*`. The real server with its worker, real
 * receivers, the real database.
 */

interface Webhook_ {
  readonly type: string
  readonly data: Record<string, unknown>
}

/** The webhooks a receiver got, verified with `secret` (the official library), as `{type, data}`. */
const verifiedWebhooks = (receiver: Receiver, secret: string): ReadonlyArray<Webhook_> =>
  receiver.requests.map((r) => new Webhook(secret).verify(r.body, verifyHeaders(r)) as Webhook_)

/** Waits for a webhook of `type` about `endpointId` at `receiver`; returns its data. */
const operationalWebhook = (receiver: Receiver, secret: string, type: string, endpointId: string) =>
  poll(
    `${type} about ${endpointId}`,
    Effect.sync(() =>
      verifiedWebhooks(receiver, secret).find((w) => w.type === type && w.data.endpointId === endpointId)
    ),
    isDefined
  )

/** A tenant with a watcher endpoint subscribed to `codex.*` and one taking every event (no filter). */
const watchedTenant = (name: string) =>
  Effect.gen(function* () {
    const tenant = yield* createTenant(name)
    const api = yield* apiClient(tenant.apiKey)
    const watcher = yield* makeReceiver((_, __, res) => answer(res, 204))
    const everything = yield* makeReceiver((_, __, res) => answer(res, 204))
    const watch = yield* api.endpoints.create({ payload: { url: watcher.url, eventTypes: ["codex.*"] } })
    const all = yield* api.endpoints.create({ payload: { url: everything.url } })
    const { secret } = yield* api.endpoints.getSecret({ params: { id: watch.id } })
    return { tenant, api, watcher, everything, watchId: watch.id, allId: all.id, secret }
  }).pipe(Effect.orDie)

const delivery = fastWorker({ maxAttempts: 2 })

layer(testServerWithSql({ config: { delivery } }), { excludeTestServices: true })("operational events", (it) => {
  it.effect(
    "an endpoint's life (created, updated, disabled, enabled, deleted) reaches the codex.* subscriber, signed; not the endpoint itself, not 'every event' endpoints",
    () =>
      Effect.gen(function* () {
        const t = yield* watchedTenant("Ops")
        const target = yield* makeReceiver((_, __, res) => answer(res, 204))
        const x = yield* t.api.endpoints.create({
          payload: { url: target.url, description: "orders", eventTypes: ["order.*"] }
        })

        const created = yield* operationalWebhook(t.watcher, t.secret, "codex.endpoint.created", x.id)
        assert.deepStrictEqual(Schema.decodeUnknownSync(EndpointStateData)(created.data), {
          endpointId: x.id,
          description: "orders",
          eventTypes: ["order.*"],
          enabled: true
        })

        yield* t.api.endpoints.update({ params: { id: x.id }, payload: { enabled: false } })
        const disabled = yield* operationalWebhook(t.watcher, t.secret, "codex.endpoint.disabled", x.id)
        assert.deepStrictEqual(Schema.decodeUnknownSync(EndpointDisabledData)(disabled.data), {
          endpointId: x.id,
          reason: "manual"
        })
        const updated = yield* operationalWebhook(t.watcher, t.secret, "codex.endpoint.updated", x.id)
        assert.isFalse(Schema.decodeUnknownSync(EndpointStateData)(updated.data).enabled)

        yield* t.api.endpoints.update({ params: { id: x.id }, payload: { enabled: true } })
        const enabled = yield* operationalWebhook(t.watcher, t.secret, "codex.endpoint.enabled", x.id)
        assert.deepStrictEqual(Schema.decodeUnknownSync(EndpointRefData)(enabled.data), { endpointId: x.id })

        yield* t.api.endpoints.delete({ params: { id: x.id } })
        yield* operationalWebhook(t.watcher, t.secret, "codex.endpoint.deleted", x.id)

        // A change that enables nothing: updated only.
        yield* t.api.endpoints.update({ params: { id: t.allId }, payload: { description: "all of it" } })
        yield* operationalWebhook(t.watcher, t.secret, "codex.endpoint.updated", t.allId)

        // Every operational payload decodes with its documented schema.
        for (const webhook of verifiedWebhooks(t.watcher, t.secret)) {
          const schema = operationalEventData[webhook.type as keyof typeof operationalEventData]
          assert.isDefined(schema, webhook.type)
          Schema.decodeUnknownSync(schema)(webhook.data)
        }
        // The endpoint the events are about never got them, nor did the endpoint taking "every event".
        assert.deepStrictEqual(target.requests, [])
        assert.deepStrictEqual(t.everything.requests, [])

        // They are ordinary events of the tenant's stream: listed with `codex.*`, and delivered.
        const listed = yield* t.api.events.list({ query: { type: "codex.*", limit: 100 } })
        const types = listed.data.map((e) => e.type)
        for (const type of [
          "codex.endpoint.created",
          "codex.endpoint.updated",
          "codex.endpoint.disabled",
          "codex.endpoint.enabled",
          "codex.endpoint.deleted"
        ]) {
          assert.include(types, type)
        }
        assert.isTrue(types.every((type) => type.startsWith("codex.")))
        // Unfiltered, the list shows what the tenant published: operational events only when named.
        yield* publish(t.api, "order.created", {})
        const unfiltered = yield* t.api.events.list({ query: { limit: 100 } })
        assert.deepStrictEqual(
          unfiltered.data.map((e) => e.type),
          ["order.created"]
        )
        const first = listed.data.find((e) => e.type === "codex.endpoint.created" && e.data?.endpointId === x.id)
        if (first === undefined) return assert.fail("codex.endpoint.created is not listed")
        const deliveries = yield* t.api.deliveries.listForEvent({ params: { id: first.id } })
        assert.deepStrictEqual(
          deliveries.data.map((d) => d.endpointId),
          [t.watchId]
        )
      })
  )

  it.effect("an event about the subscriber itself is recorded but not delivered to it", () =>
    Effect.gen(function* () {
      const t = yield* watchedTenant("Self")
      yield* t.api.endpoints.update({ params: { id: t.watchId }, payload: { description: "me" } })
      const listed = yield* poll(
        "the update's event",
        t.api.events
          .list({ query: { type: "codex.endpoint.updated" } })
          .pipe(Effect.map((page) => page.data.find((e) => e.data?.endpointId === t.watchId))),
        isDefined
      )
      const deliveries = yield* t.api.deliveries.listForEvent({ params: { id: listed.id } })
      assert.deepStrictEqual(deliveries.data, [])
      // Meanwhile the watcher got the events about the other endpoint, so deliveries were running.
      yield* operationalWebhook(t.watcher, t.secret, "codex.endpoint.created", t.allId)
      assert.isFalse(
        verifiedWebhooks(t.watcher, t.secret).some((w) => w.data.endpointId === t.watchId),
        "nothing about the watcher reached it"
      )
    })
  )

  it.effect("tenants cannot publish codex.* (422), and one tenant's operational events stay its own", () =>
    Effect.gen(function* () {
      const a = yield* watchedTenant("Ops A")
      const b = yield* watchedTenant("Ops B")
      for (const type of ["codex.endpoint.created", "codex.anything", "codex."]) {
        const refused = yield* request("/v1/events", { bearer: a.tenant.apiKey, json: { type, data: {} } })
        const body = expectProblem(refused, 422)
        assert.include(String(body.detail), "reserved")
      }
      // "codex" without the dot, and types that merely contain it, are the tenant's own.
      yield* publish(a.api, "codex", {})
      yield* publish(a.api, "my.codex.thing", {})

      const extra = yield* a.api.endpoints.create({ payload: { url: a.everything.url, enabled: false } })
      yield* operationalWebhook(a.watcher, a.secret, "codex.endpoint.created", extra.id)
      // B's watcher hears only of B's own endpoints.
      yield* operationalWebhook(b.watcher, b.secret, "codex.endpoint.created", b.allId)
      const heardByB = verifiedWebhooks(b.watcher, b.secret).map((w) => w.data.endpointId)
      assert.isTrue(
        heardByB.every((id) => id === b.allId || id === b.watchId),
        JSON.stringify(heardByB)
      )
      const listedByB = yield* b.api.events.list({ query: { type: "codex.*", limit: 100 } })
      assert.isTrue(listedByB.data.every((e) => e.data?.endpointId !== extra.id))
    })
  )

  it.effect(
    "a delivery failing for good reports codex.delivery.exhausted, a 410 codex.endpoint.disabled (gone); failures of operational deliveries report nothing more",
    () =>
      Effect.gen(function* () {
        const t = yield* watchedTenant("Failures")
        const failing = yield* makeReceiver((_, __, res) => answer(res, 500, {}, "down"))
        const gone = yield* makeReceiver((_, __, res) => answer(res, 410))
        // A second watcher that is dead itself: its deliveries of operational events fail for good too.
        const deadWatcher = yield* makeReceiver((_, __, res) => answer(res, 503))
        const dead = yield* t.api.endpoints.create({ payload: { url: deadWatcher.url, eventTypes: ["codex.*"] } })
        const broken = yield* t.api.endpoints.create({ payload: { url: failing.url, eventTypes: ["order.*"] } })
        const leaving = yield* t.api.endpoints.create({ payload: { url: gone.url, eventTypes: ["invoice.*"] } })

        const order = yield* publish(t.api, "order.created", { n: 1 })
        const exhausted = yield* operationalWebhook(t.watcher, t.secret, "codex.delivery.exhausted", broken.id)
        const orderDelivery = (yield* t.api.deliveries.listForEvent({ params: { id: order.event.id } })).data.find(
          (d) => d.endpointId === broken.id
        )
        assert.deepStrictEqual(Schema.decodeUnknownSync(DeliveryExhaustedData)(exhausted.data), {
          deliveryId: orderDelivery?.id ?? "",
          eventId: order.event.id,
          eventType: "order.created",
          endpointId: broken.id,
          attempts: delivery.maxAttempts,
          lastStatus: 500,
          lastError: null
        })

        yield* publish(t.api, "invoice.paid", { n: 2 })
        const disabled = yield* operationalWebhook(t.watcher, t.secret, "codex.endpoint.disabled", leaving.id)
        assert.deepStrictEqual(disabled.data, { endpointId: leaving.id, reason: "gone" })
        const after = yield* t.api.endpoints.get({ params: { id: leaving.id } })
        assert.isFalse(after.enabled)

        // The dead watcher's deliveries of those operational events fail for good, and report nothing: the only
        // exhausted events are about deliveries of the tenant's own events.
        yield* poll(
          "the dead watcher's deliveries to fail for good",
          t.api.deliveries
            .listForEndpoint({ params: { id: dead.id }, query: { status: "failed" } })
            .pipe(Effect.map((page) => page.data.length)),
          (n) => n >= 2
        )
        const reported = yield* t.api.events.list({ query: { type: "codex.delivery.exhausted", limit: 100 } })
        assert.deepStrictEqual(
          reported.data.map((e) => [e.data?.eventType, e.data?.endpointId]),
          [["order.created", broken.id]]
        )
      })
  )

  it.effect(
    "POST /v1/endpoints/{id}/test: a signed codex.test to that endpoint only, answered with its delivery; 409 disabled, 404 foreign",
    () =>
      Effect.gen(function* () {
        const t = yield* watchedTenant("Test sends")
        const target = yield* makeReceiver((_, __, res) => answer(res, 204))
        const endpoint = yield* t.api.endpoints.create({ payload: { url: target.url, eventTypes: ["order.*"] } })
        const { secret } = yield* t.api.endpoints.getSecret({ params: { id: endpoint.id } })

        const sent = yield* t.api.deliveries.sendTest({ params: { id: endpoint.id } })
        assert.strictEqual(sent.endpointId, endpoint.id)
        assert.strictEqual(sent.status, "pending")
        const webhook = yield* poll(
          "the test event at the endpoint",
          Effect.sync(() => verifiedWebhooks(target, secret).find((w) => w.type === "codex.test")),
          isDefined
        )
        assert.deepStrictEqual(Schema.decodeUnknownSync(TestEventData)(webhook.data).endpointId, endpoint.id)
        const settled = yield* poll(
          "the test delivery to succeed",
          t.api.deliveries.get({ params: { id: sent.id } }),
          (d) => d.status === "succeeded"
        )
        assert.strictEqual(settled.attempts.length, 1)
        assert.strictEqual(settled.eventId, sent.eventId)
        // To that endpoint only: the codex.* subscriber and the "every event" endpoint got nothing of it.
        const deliveries = yield* t.api.deliveries.listForEvent({ params: { id: sent.eventId } })
        assert.deepStrictEqual(
          deliveries.data.map((d) => d.endpointId),
          [endpoint.id]
        )
        assert.isFalse(verifiedWebhooks(t.watcher, t.secret).some((w) => w.type === "codex.test"))

        // With an Idempotency-Key, a retry answers the same delivery.
        const keyed = { method: "POST", bearer: t.tenant.apiKey, headers: { "idempotency-key": "test-send-1" } }
        const first = yield* request(`/v1/endpoints/${endpoint.id}/test`, keyed)
        const again = yield* request(`/v1/endpoints/${endpoint.id}/test`, keyed)
        assert.strictEqual(first.status, 202, first.text)
        assert.strictEqual(again.text, first.text)
        assert.strictEqual(again.headers.get("idempotent-replayed"), "true")

        yield* t.api.endpoints.update({ params: { id: endpoint.id }, payload: { enabled: false } })
        const disabled = yield* request(`/v1/endpoints/${endpoint.id}/test`, {
          method: "POST",
          bearer: t.tenant.apiKey
        })
        expectProblem(disabled, 409)
        const other = yield* createTenant("Test sends, elsewhere")
        expectProblem(yield* request(`/v1/endpoints/${t.allId}/test`, { method: "POST", bearer: other.apiKey }), 404)
        expectProblem(yield* request("/v1/endpoints/ep_nope/test", { method: "POST", bearer: other.apiKey }), 404)
      })
  )
})
