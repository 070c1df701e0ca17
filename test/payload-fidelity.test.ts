import { assert, layer } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { Webhook } from "standardwebhooks"
import { Event as EventSchema, PublishedEvent } from "../src/domain/Event.ts"
import { fastWorker } from "./support/deliveryApi.ts"
import { apiClient, createTenant, request, type WireResponse } from "./support/http.ts"
import { expectProblem } from "./support/problems.ts"
import { answer, makeReceiver, verifyHeaders, webhookOf } from "./support/receiver.ts"
import { testServer } from "./support/testServer.ts"

/**
 * Payload fidelity (issue 15) on the real server, its worker and a real receiver: `data` reaches the receiver, and
 * comes back from `POST /v1/events`, `GET /v1/events/{id}` and the list, as the publisher wrote it — member order,
 * number text, string escapes — with only the whitespace between tokens removed. Every comparison is on raw text.
 */

const workerConfig = {
  delivery: fastWorker()
}

interface Case {
  readonly name: string
  /** `data` as sent, whitespace and all. */
  readonly sent: string
  /** What must be stored, delivered and returned. */
  readonly minified: string
}

const cases: ReadonlyArray<Case> = [
  {
    name: "the issue's example: member order, 2.50, a 23-digit integer",
    sent: '{"z":1,"a":2.50,"big":12345678901234567890123}',
    minified: '{"z":1,"a":2.50,"big":12345678901234567890123}'
  },
  {
    name: "number spellings, beyond the double range included",
    sent: '{"n": [-0, 1.0E+2, 1e400, -1E-400, 0.10, 1E2, 123456789012345678901234567890.000001, 5e-324]}',
    minified: '{"n":[-0,1.0E+2,1e400,-1E-400,0.10,1E2,123456789012345678901234567890.000001,5e-324]}'
  },
  {
    name: "string escapes as sent, in values and names",
    sent: String.raw`{"\u00e9":"\u00e9", "e":"é", "slash":"\/", "/":"/", "ctl":"\"\\\b\f\n\r\t", "pair":"\ud83d\ude00", "raw":"😀", "A\u0042":"\u0041"}`,
    minified: String.raw`{"\u00e9":"\u00e9","e":"é","slash":"\/","/":"/","ctl":"\"\\\b\f\n\r\t","pair":"\ud83d\ude00","raw":"😀","A\u0042":"\u0041"}`
  },
  {
    name: "integer-like names stay where they were (a JavaScript object moves them first)",
    sent: '{"b":1,"2":2,"1":3,"10":4,"a":{"9":true,"0":false},"__proto__":{"x":1},"constructor":"c"}',
    minified: '{"b":1,"2":2,"1":3,"10":4,"a":{"9":true,"0":false},"__proto__":{"x":1},"constructor":"c"}'
  },
  {
    name: "nested arrays and objects, whitespace of every kind between tokens, none inside strings",
    sent: '{\n\t"outer" : {\r\n "inner" : [ 1 , 2 , { "k" : "v  w\\t" } , [ [ ] ] ] } ,\n "empty" : { } , "list" : [ ] , "null" : null , "t" : true , "f" : false \n}',
    minified: '{"outer":{"inner":[1,2,{"k":"v  w\\t"},[[]]]},"empty":{},"list":[],"null":null,"t":true,"f":false}'
  }
]

/** The contract's `Event` as text, around `data`: what every events endpoint must answer for this event. */
const eventText = (
  event: { readonly id: string; readonly occurredAt: string; readonly createdAt: string },
  type: string,
  data: string
) =>
  `{"id":${JSON.stringify(event.id)},"type":${JSON.stringify(type)},"data":${data},` +
  `"occurredAt":${JSON.stringify(event.occurredAt)},"createdAt":${JSON.stringify(event.createdAt)},"expungedAt":null}`

/** A tenant whose one endpoint is a receiver answering 204; returns its key, the receiver and the signing secret. */
const tenantWithReceiver = (name: string) =>
  Effect.gen(function* () {
    const receiver = yield* makeReceiver((_, __, res) => answer(res, 204))
    const tenant = yield* createTenant(name)
    const api = yield* apiClient(tenant.apiKey)
    const endpoint = yield* api.endpoints.create({ payload: { url: receiver.url } })
    const { secret } = yield* api.endpoints.getSecret({ params: { id: endpoint.id } })
    return { apiKey: tenant.apiKey, receiver, secret }
  }).pipe(Effect.orDie)

const publishRaw = (apiKey: string, body: string, headers: Record<string, string> = {}) =>
  request("/v1/events", { bearer: apiKey, raw: body, headers })

/** The event's id and times, read from a 202 (parsing is fine for those). */
const publishedEvent = (response: WireResponse) => {
  assert.strictEqual(response.status, 202, response.text)
  return (JSON.parse(response.text) as { readonly event: { id: string; occurredAt: string; createdAt: string } }).event
}

layer(testServer({ config: workerConfig }), { excludeTestServices: true })("payload fidelity", (it) => {
  it.effect("data as sent, minified: in the publish answer, GET, the list and the signed webhook", () =>
    Effect.gen(function* () {
      const { apiKey, receiver, secret } = yield* tenantWithReceiver("Fidelity")
      for (const [i, { name, sent, minified }] of cases.entries()) {
        const type = `fidelity.case${i}`
        // Top-level member order and whitespace vary too; they are not part of `data`.
        const body = i % 2 === 0 ? `{"type":"${type}","data":${sent}}` : ` { "data" : ${sent} ,\n "type" : "${type}" } `
        const published = yield* publishRaw(apiKey, body)
        const event = publishedEvent(published)
        const expected = eventText(event, type, minified)
        assert.strictEqual(published.text, `{"event":${expected},"deliveriesQueued":1}`, name)
        assert.strictEqual(published.headers.get("content-type"), "application/json", name)
        // The typed client reads the same text (the contract still describes these bodies).
        Schema.decodeUnknownSync(PublishedEvent)(JSON.parse(published.text))

        const read = yield* request(`/v1/events/${event.id}`, { bearer: apiKey })
        assert.strictEqual(read.status, 200, read.text)
        assert.strictEqual(read.text, expected, name)
        Schema.decodeUnknownSync(EventSchema)(JSON.parse(read.text))

        const listed = yield* request(`/v1/events?type=${type}`, { bearer: apiKey })
        assert.strictEqual(listed.status, 200, listed.text)
        assert.strictEqual(listed.text, `{"data":[${expected}],"nextCursor":null}`, name)

        const webhook = yield* webhookOf(receiver, event.id)
        assert.strictEqual(
          webhook.body,
          `{"type":"${type}","timestamp":"${event.occurredAt}","data":${minified}}`,
          `${name}: the webhook body`
        )
        // Signed over exactly those bytes.
        new Webhook(secret).verify(webhook.body, verifyHeaders(webhook))
      }
    })
  )

  it.effect("Idempotency-Key: a retry must send the same JSON up to whitespace; order, numbers, escapes count", () =>
    Effect.gen(function* () {
      const { apiKey } = yield* tenantWithReceiver("Fidelity idempotency")
      const key = { "idempotency-key": `fidelity-${Date.now()}` }
      const first = yield* publishRaw(apiKey, '{"type":"idem.f","data":{"b":1,"a":2.50}}', key)
      assert.strictEqual(first.status, 202, first.text)

      const again = yield* publishRaw(apiKey, ' { "type" : "idem.f" , "data" : { "b" : 1 , "a" : 2.50 } } ', key)
      assert.strictEqual(again.status, 202, again.text)
      assert.strictEqual(again.headers.get("idempotent-replayed"), "true")
      assert.strictEqual(again.text, first.text)

      for (const other of [
        '{"type":"idem.f","data":{"a":2.50,"b":1}}',
        '{"type":"idem.f","data":{"b":1,"a":2.5}}',
        String.raw`{"type":"idem.f","data":{"\u0062":1,"a":2.50}}`
      ]) {
        assert.strictEqual(expectProblem(yield* publishRaw(apiKey, other, key), 422).status, 422, other)
      }
    })
  )

  it.effect("/openapi.json still describes data as an object (null once expunged)", () =>
    Effect.gen(function* () {
      const response = yield* request("/openapi.json")
      const spec = JSON.parse(response.text) as {
        readonly components: { readonly schemas: Record<string, { readonly properties: Record<string, unknown> }> }
      }
      const data = spec.components.schemas.Event?.properties.data as { readonly anyOf?: unknown } | undefined
      assert.deepStrictEqual(data?.anyOf, [{ type: "object" }, { type: "null" }])
      const published = spec.components.schemas.PublishEvent?.properties.data
      assert.strictEqual((published as { readonly type?: unknown } | undefined)?.type, "object")
    })
  )
})
