import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { createTenant, request } from "./support/http.ts"
import { errorPaths, expectProblem } from "./support/problems.ts"
import { testServer } from "./support/testServer.ts"

/**
 * Nothing a client sends is silently ignored: a member no body declares is a 400 naming it (a typo such as `eventType`
 * for `eventTypes` would otherwise mean "every event"), and so is any member sent to a route that takes no body.
 */

layer(testServer(), { excludeTestServices: true })("strict request bodies", (it) => {
  it.effect("an unknown member on any body is a 400 naming it, at any depth; nothing is written", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Strict")
      const key = tenant.apiKey
      const endpoint = yield* request("/v1/endpoints", { bearer: key, json: { url: "http://127.0.0.1:9999/hook" } })
      assert.strictEqual(endpoint.status, 201, endpoint.text)
      const endpointId = (JSON.parse(endpoint.text) as { readonly id: string }).id

      const cases: ReadonlyArray<
        readonly [method: string, path: string, bearer: string | undefined, body: unknown, at: ReadonlyArray<string>]
      > = [
        ["POST", "/v1/events", key, { type: "order.created", data: {}, tyep: "x" }, ["payload", "tyep"]],
        [
          "POST",
          "/v1/endpoints",
          key,
          { url: "http://127.0.0.1:9999/x", eventType: ["a.b"] },
          ["payload", "eventType"]
        ],
        ["PATCH", `/v1/endpoints/${endpointId}`, key, { id: "ep_other", description: "x" }, ["payload", "id"]],
        [
          "POST",
          `/v1/endpoints/${endpointId}/recover`,
          key,
          { since: "2026-01-01T00:00:00Z", until: "x" },
          ["payload", "until"]
        ],
        ["POST", "/admin/tenants", undefined, { name: "x", nmae: "y" }, ["payload", "nmae"]],
        [
          "PATCH",
          `/admin/tenants/${tenant.tenantId}`,
          undefined,
          { rateLimit: { limit: 5, windowSeconds: 60, burst: 10 } },
          ["payload", "rateLimit", "burst"]
        ]
      ]
      for (const [method, path, bearer, body, at] of cases) {
        const problem = expectProblem(yield* request(path, { method, bearer, json: body }), 400)
        assert.deepStrictEqual(errorPaths(problem), [at], `${method} ${path}`)
      }
      // Nothing was written: the endpoint kept its description, no event was stored.
      const read = JSON.parse((yield* request(`/v1/endpoints/${endpointId}`, { bearer: key })).text) as {
        readonly description: string
      }
      assert.strictEqual(read.description, "")
      const events = JSON.parse((yield* request("/v1/events", { bearer: key })).text) as { readonly data: unknown[] }
      assert.deepStrictEqual(events.data, [])
      // Open-ended members stay open: `data` and `metadata` take any names.
      const published = yield* request("/v1/events", {
        bearer: key,
        json: { type: "order.created", data: { tyep: 1, anything: { goes: true } } }
      })
      assert.strictEqual(published.status, 202, published.text)
    })
  )

  it.effect("a route that takes no body refuses one with members (400 naming them); nothing or {} is fine", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("No body")
      const path = `/admin/tenants/${tenant.tenantId}/api-keys`
      const named = expectProblem(yield* request(path, { method: "POST", json: { name: "ci key" } }), 400)
      assert.include(String(named.detail), '"name"')
      for (const raw of ["[1]", "null", '"x"', "not json"]) {
        const refused = expectProblem(yield* request(path, { method: "POST", raw }), 400)
        assert.include(String(refused.detail), "takes no request body", raw)
      }
      assert.strictEqual((yield* request(path, { method: "POST" })).status, 201)
      assert.strictEqual((yield* request(path, { method: "POST", json: {} })).status, 201)
      assert.strictEqual((yield* request(path, { method: "POST", raw: " \n" })).status, 201)
    })
  )
})
