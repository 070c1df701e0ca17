import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { type Api, deliveryOf, fastWorker, publish, settled, tenantWithEndpoint } from "./support/deliveryApi.ts"
import { createTenant, type RequestOptions, request, type WireResponse } from "./support/http.ts"
import { expectProblem } from "./support/problems.ts"
import { answer, makeReceiver } from "./support/receiver.ts"
import { testServer } from "./support/testServer.ts"

/**
 * `Idempotency-Key` on the write routes besides publishing and endpoint CRUD (README "Idempotency": every POST and
 * PATCH under /v1 and /admin): a retry with the key gets the stored status and bytes with `Idempotent-Replayed: true`
 * and the effect does NOT happen again; the same key with a different request is 422 and does nothing. Each replay
 * comes after the world changed, so that running the request again would show. The real server with its worker.
 */

let keys = 0
const freshKey = (route: string) => `routes-${route}-${Date.now()}-${++keys}`

/** `request` with an `Idempotency-Key`. */
const keyed = (key: string, path: string, options: RequestOptions) =>
  request(path, { ...options, headers: { ...options.headers, "idempotency-key": key } })

/** The first answer ran (not a replay); returns its JSON body. */
const ran = (response: WireResponse, status: number): Record<string, unknown> => {
  assert.strictEqual(response.status, status, response.text)
  assert.isNull(response.headers.get("idempotent-replayed"))
  return JSON.parse(response.text) as Record<string, unknown>
}

/** A replay of `first`: its status and bytes, marked. */
const assertReplayOf = (replay: WireResponse, first: WireResponse) => {
  assert.strictEqual(replay.status, first.status, replay.text)
  assert.strictEqual(replay.headers.get("idempotent-replayed"), "true")
  assert.strictEqual(replay.text, first.text)
}

const mismatch = (response: WireResponse) => {
  expectProblem(response, 422)
  assert.isNull(response.headers.get("idempotent-replayed"))
}

/** A receiver that fails while `failing.value` is true. */
const switchableReceiver = () =>
  Effect.gen(function* () {
    const failing = { value: true }
    const receiver = yield* makeReceiver((_, __, res) => answer(res, failing.value ? 500 : 204))
    return { receiver, failing }
  })

const stateOf = (api: Api, eventId: string) =>
  Effect.map(deliveryOf(api, eventId), (row) => [row?.status, row?.attemptCount])

layer(testServer({ config: { delivery: fastWorker({ maxAttempts: 1 }) } }), { excludeTestServices: true })(
  "Idempotency-Key on retry, recover, rotate and the admin routes",
  (it) => {
    it.effect("POST /v1/deliveries/{id}/retry: a replay queues no second attempt", () =>
      Effect.gen(function* () {
        const { receiver, failing } = yield* switchableReceiver()
        const { api, apiKey } = yield* tenantWithEndpoint(receiver.url)
        const event = yield* publish(api)
        const failed = yield* settled(api, event.event.id)
        assert.deepStrictEqual([failed.status, failed.attemptCount], ["failed", 1])

        failing.value = false
        const key = freshKey("retry")
        const path = `/v1/deliveries/${failed.id}/retry`
        const first = yield* keyed(key, path, { method: "POST", bearer: apiKey })
        assert.strictEqual(ran(first, 202).status, "pending")
        const done = yield* settled(api, event.event.id)
        assert.deepStrictEqual([done.status, done.attemptCount], ["succeeded", 2])

        // Retrying a delivered delivery would queue it again (a receiver that lost it): the replay does not.
        assertReplayOf(yield* keyed(key, path, { method: "POST", bearer: apiKey }), first)
        mismatch(yield* keyed(key, path, { bearer: apiKey, json: {} }))
        assert.deepStrictEqual(yield* stateOf(api, event.event.id), ["succeeded", 2])
        assert.strictEqual(receiver.requests.length, 2)
      })
    )

    it.effect("POST /v1/endpoints/{id}/recover: a replay re-queues nothing that failed since", () =>
      Effect.gen(function* () {
        const { receiver, failing } = yield* switchableReceiver()
        const { api, apiKey, endpointId } = yield* tenantWithEndpoint(receiver.url)
        const older = yield* publish(api, "order.created", { n: 1 })
        assert.strictEqual((yield* settled(api, older.event.id)).status, "failed")

        failing.value = false
        const key = freshKey("recover")
        const path = `/v1/endpoints/${endpointId}/recover`
        const body = { since: "2000-01-01T00:00:00Z" }
        const first = yield* keyed(key, path, { bearer: apiKey, json: body })
        assert.deepStrictEqual(ran(first, 202), { queued: 1 })
        assert.strictEqual((yield* settled(api, older.event.id)).status, "succeeded")

        // Another delivery fails after the first recovery: running it again would queue this one.
        failing.value = true
        const newer = yield* publish(api, "order.created", { n: 2 })
        assert.strictEqual((yield* settled(api, newer.event.id)).status, "failed")
        assertReplayOf(yield* keyed(key, path, { bearer: apiKey, json: body }), first)
        mismatch(yield* keyed(key, path, { bearer: apiKey, json: { since: "2001-01-01T00:00:00Z" } }))
        assert.deepStrictEqual(yield* stateOf(api, newer.event.id), ["failed", 1])
        assert.deepStrictEqual(yield* stateOf(api, older.event.id), ["succeeded", 2])
      })
    )

    it.effect("POST /v1/endpoints/{id}/secret/rotate: a replay does not rotate again", () =>
      Effect.gen(function* () {
        const receiver = yield* makeReceiver((_, __, res) => answer(res, 204))
        const { api, apiKey, endpointId, secret: original } = yield* tenantWithEndpoint(receiver.url)
        const currentSecret = api.endpoints.getSecret({ params: { id: endpointId } }).pipe(Effect.orDie)
        const key = freshKey("rotate")
        const path = `/v1/endpoints/${endpointId}/secret/rotate`
        const first = yield* keyed(key, path, { method: "POST", bearer: apiKey })
        const rotated = ran(first, 200)
        assert.notStrictEqual(rotated.secret, original)
        assert.strictEqual(rotated.previousSecret, original)
        assert.strictEqual((yield* currentSecret).secret, rotated.secret)

        assertReplayOf(yield* keyed(key, path, { method: "POST", bearer: apiKey }), first)
        mismatch(yield* keyed(key, path, { bearer: apiKey, json: {} }))
        const after = yield* currentSecret
        assert.strictEqual(after.secret, rotated.secret, "not rotated a second time")
        assert.strictEqual(after.previousSecret, original)
      })
    )

    it.effect("PATCH /admin/tenants/{id}: a replay does not write its body again", () =>
      Effect.gen(function* () {
        const tenant = yield* createTenant("Idem admin patch")
        const path = `/admin/tenants/${tenant.tenantId}`
        const nameNow = Effect.map(request(path), (r) => ran(r, 200).name)
        const key = freshKey("admin-patch")
        const first = yield* keyed(key, path, { method: "PATCH", json: { name: "Renamed once" } })
        assert.strictEqual(ran(first, 200).name, "Renamed once")
        // Renamed again since, without a key: a replay that ran would undo this.
        ran(yield* request(path, { method: "PATCH", json: { name: "Renamed twice" } }), 200)

        assertReplayOf(yield* keyed(key, path, { method: "PATCH", json: { name: "Renamed once" } }), first)
        mismatch(yield* keyed(key, path, { method: "PATCH", json: { name: "Renamed thrice" } }))
        assert.strictEqual(yield* nameNow, "Renamed twice")
      })
    )

    it.effect("POST /admin/tenants/{id}/api-keys: a replay issues no second key", () =>
      Effect.gen(function* () {
        const tenant = yield* createTenant("Idem api key")
        const keysNow = Effect.map(request(`/admin/tenants/${tenant.tenantId}`), (r) => {
          const detail = ran(r, 200) as { readonly apiKeys: ReadonlyArray<unknown> }
          return detail.apiKeys.length
        })
        const key = freshKey("api-key")
        const path = `/admin/tenants/${tenant.tenantId}/api-keys`
        const first = yield* keyed(key, path, { method: "POST" })
        assert.match(String(ran(first, 201).key), /^ck_/)
        assert.strictEqual(yield* keysNow, 2)

        assertReplayOf(yield* keyed(key, path, { method: "POST" }), first)
        mismatch(yield* keyed(key, path, { json: {} }))
        assert.strictEqual(yield* keysNow, 2, "the first key and the one issued once")
      })
    )
  }
)
