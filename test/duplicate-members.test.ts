import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { createTenant, request, type WireResponse } from "./support/http.ts"
import { expectProblem } from "./support/problems.ts"
import { testServer } from "./support/testServer.ts"

/**
 * JSON request bodies are I-JSON (RFC 7493): a duplicate member name, at any depth and on any route that takes a JSON
 * body, is a 400 problem naming the member, in the shape of every other decoding failure. `JSON.parse` would keep the
 * last member silently, and the event would deliver a payload the publisher did not mean.
 */

const duplicateMemberMessage = "Duplicate member name: a name may appear once per object (I-JSON, RFC 7493)"

const expectDuplicate = (response: WireResponse, path: ReadonlyArray<string | number>) => {
  const problem = expectProblem(response, 400)
  assert.strictEqual(problem.detail, "Request validation failed", response.text)
  assert.deepStrictEqual(problem.errors, [{ path, message: duplicateMemberMessage }])
}

const publishRaw = (apiKey: string, body: string, headers: Record<string, string> = {}) =>
  request("/v1/events", { bearer: apiKey, raw: body, headers })

layer(testServer(), { excludeTestServices: true })("duplicate member names", (it) => {
  it.effect("duplicate member names are refused with 400 naming the member, at any depth", () =>
    Effect.gen(function* () {
      const { apiKey } = yield* createTenant("Duplicates")
      expectDuplicate(yield* publishRaw(apiKey, '{"type":"dup.a","type":"dup.b","data":{}}'), ["payload", "type"])
      expectDuplicate(yield* publishRaw(apiKey, '{"type":"dup.top","data":{"a":1,"a":2}}'), ["payload", "data", "a"])
      expectDuplicate(yield* publishRaw(apiKey, '{"type":"dup.nested","data":{"x":{"k":1,"k":1}}}'), [
        "payload",
        "data",
        "x",
        "k"
      ])
      // Inside an array, and spelled differently: names are compared once their escapes are read.
      expectDuplicate(
        yield* publishRaw(apiKey, String.raw`{"type":"dup.array","data":{"l":[{},{"k":1,"\u006b":2}]}}`),
        ["payload", "data", "l", 1, "k"]
      )
      // None of them was stored, nor delivered.
      const listed = yield* request("/v1/events", { bearer: apiKey })
      assert.strictEqual(listed.text, '{"data":[],"nextCursor":null}')

      // Names differing in case or whitespace, and one name in sibling objects, are not duplicates.
      const distinct = yield* publishRaw(
        apiKey,
        '{"type":"dup.none","data":{"a":1,"A":2,"a ":3,"o":{"a":1},"p":{"a":1}}}'
      )
      assert.strictEqual(distinct.status, 202, distinct.text)
    })
  )

  it.effect("duplicate member names on the other JSON routes too; the credentials are checked first", () =>
    Effect.gen(function* () {
      const { apiKey } = yield* createTenant("Duplicates, other routes")
      const url = '"http://127.0.0.1:9999/hook"'
      expectDuplicate(yield* request("/v1/endpoints", { bearer: apiKey, raw: `{"url":${url},"url":${url}}` }), [
        "payload",
        "url"
      ])
      const created = yield* request("/v1/endpoints", { bearer: apiKey, raw: `{"url":${url}}` })
      assert.strictEqual(created.status, 201, created.text)
      const id = (JSON.parse(created.text) as { readonly id: string }).id
      expectDuplicate(
        yield* request(`/v1/endpoints/${id}`, {
          method: "PATCH",
          bearer: apiKey,
          raw: '{"metadata":{"team":"a","team":"b"}}'
        }),
        ["payload", "metadata", "team"]
      )
      expectDuplicate(
        yield* request(`/v1/endpoints/${id}/recover`, {
          bearer: apiKey,
          raw: '{"since":"2026-01-01T00:00:00Z","since":"2026-01-02T00:00:00Z"}'
        }),
        ["payload", "since"]
      )
      expectDuplicate(yield* request("/admin/tenants", { raw: '{"name":"a","name":"b"}' }), ["payload", "name"])
      // Without valid credentials the answer is 401, whatever the body.
      const anonymous = yield* request("/v1/events", { bearer: "ck_wrong", raw: '{"type":"a","type":"a","data":{}}' })
      assert.strictEqual(anonymous.status, 401, anonymous.text)
    })
  )

  it.effect("a body refused for a duplicate name claims no Idempotency-Key, and one that is not JSON stays so", () =>
    Effect.gen(function* () {
      const { apiKey } = yield* createTenant("Duplicates, keys")
      // Refused before the key is claimed: the corrected body under that key is a new request, not a replay.
      const fresh = { "idempotency-key": `fidelity-dup-${Date.now()}` }
      expectDuplicate(yield* publishRaw(apiKey, '{"type":"idem.g","data":{"a":1,"a":1}}', fresh), [
        "payload",
        "data",
        "a"
      ])
      const corrected = yield* publishRaw(apiKey, '{"type":"idem.g","data":{"a":1}}', fresh)
      assert.strictEqual(corrected.status, 202, corrected.text)
      assert.isNull(corrected.headers.get("idempotent-replayed"))

      // Not JSON (cut short after a duplicate): the decoder's own answer, not a duplicate name.
      const cut = expectProblem(yield* publishRaw(apiKey, '{"type":"idem.h","data":{"a":1,"a":1}'), 400)
      assert.notInclude(JSON.stringify(cut.errors), "Duplicate member name")
    })
  )
})
