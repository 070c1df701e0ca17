import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { fastWorker, publish } from "./support/deliveryApi.ts"
import { apiClient, createTenant, request } from "./support/http.ts"
import { expectProblem } from "./support/problems.ts"
import { answer, headerOf, makeReceiver, webhookOf } from "./support/receiver.ts"
import { testServerWithSql } from "./support/sharedDatabase.ts"

/**
 * Custom headers on an endpoint (issue 20): sent with every delivery, stored sealed, read back masked; what HTTP or
 * codex-api sets itself refused with a 422 naming the header. The real server and worker, a real receiver, the real
 * database.
 */

const secretValue = "Bearer sk_receiver_7d1f0a"

layer(testServerWithSql({ config: { delivery: fastWorker() } }), { excludeTestServices: true })(
  "custom headers",
  (it) => {
    it.effect("sent with every delivery, stored sealed, shown masked; replaced by a PATCH, removed with {}", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const tenant = yield* createTenant("Headers")
        const api = yield* apiClient(tenant.apiKey)
        const receiver = yield* makeReceiver((_, __, res) => answer(res, 204))
        const created = yield* api.endpoints.create({
          payload: { url: receiver.url, headers: { Authorization: secretValue, "X-Environment": "production" } }
        })
        assert.deepStrictEqual(created.headers, { Authorization: "****", "X-Environment": "****" })
        assert.deepStrictEqual((yield* api.endpoints.get({ params: { id: created.id } })).headers, created.headers)
        const listed = yield* api.endpoints.list({ query: {} })
        assert.deepStrictEqual(listed.data.find((e) => e.id === created.id)?.headers, created.headers)

        // At rest: sealed, the names alone in the clear.
        const [stored] = yield* sql<{ readonly headers: string | null; readonly header_names: ReadonlyArray<string> }>`
          SELECT headers, header_names FROM endpoints WHERE id = ${created.id}`
        assert.deepStrictEqual(stored?.header_names, ["Authorization", "X-Environment"])
        assert.match(stored?.headers ?? "", /^enc1:/)
        assert.notInclude(stored?.headers ?? "", "sk_receiver")

        const first = yield* publish(api, "order.created", { n: 1 })
        const received = yield* webhookOf(receiver, first.event.id)
        assert.strictEqual(headerOf(received, "authorization"), secretValue)
        assert.strictEqual(headerOf(received, "x-environment"), "production")
        assert.strictEqual(headerOf(received, "content-type"), "application/json")
        assert.match(headerOf(received, "user-agent"), /^codex-api\//)

        // A PATCH replaces the set: the old one is gone, the new one sent.
        const patched = yield* api.endpoints.update({
          params: { id: created.id },
          payload: { headers: { "X-Tag": "v2" } }
        })
        assert.deepStrictEqual(patched.headers, { "X-Tag": "****" })
        const second = yield* publish(api, "order.created", { n: 2 })
        const again = yield* webhookOf(receiver, second.event.id)
        assert.strictEqual(headerOf(again, "x-tag"), "v2")
        assert.strictEqual(headerOf(again, "authorization"), "")

        // `{}` removes them all; a PATCH without `headers` leaves them as they are.
        yield* api.endpoints.update({ params: { id: created.id }, payload: { description: "kept" } })
        assert.deepStrictEqual((yield* api.endpoints.get({ params: { id: created.id } })).headers, { "X-Tag": "****" })
        const cleared = yield* api.endpoints.update({ params: { id: created.id }, payload: { headers: {} } })
        assert.deepStrictEqual(cleared.headers, {})
        const [after] = yield* sql<{ readonly headers: string | null }>`
          SELECT headers FROM endpoints WHERE id = ${created.id}`
        assert.isNull(after?.headers ?? null)
        const third = yield* publish(api, "order.created", { n: 3 })
        const plain = yield* webhookOf(receiver, third.event.id)
        assert.strictEqual(headerOf(plain, "x-tag"), "")
      })
    )

    it.effect("what HTTP or codex-api sets, bad names and values: 422 naming the header; too many: 400", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const tenant = yield* createTenant("Headers refused")
        const api = yield* apiClient(tenant.apiKey)
        const receiver = yield* makeReceiver((_, __, res) => answer(res, 204))
        const refused: ReadonlyArray<Record<string, string>> = [
          { Host: "example.com" },
          { "Content-Length": "10" },
          { "content-type": "text/plain" },
          { "User-Agent": "mine" },
          { "Webhook-Signature": "v1,forged" },
          { "webhook-id": "x" },
          { Connection: "close" },
          { "Transfer-Encoding": "chunked" },
          { traceparent: "00-x" },
          { "bad name": "x" },
          { "X-Split": "a\r\nInjected: yes" },
          { "X-Empty": "" },
          { "X-Long": "x".repeat(1025) },
          { "X-Twice": "a", "x-twice": "b" }
        ]
        for (const headers of refused) {
          const create = yield* request("/v1/endpoints", {
            bearer: tenant.apiKey,
            json: { url: receiver.url, headers }
          })
          const body = expectProblem(create, 422)
          assert.include(String(body.detail), "headers are not allowed", JSON.stringify(headers))
        }
        const endpoint = yield* api.endpoints.create({ payload: { url: receiver.url } })
        const patch = yield* request(`/v1/endpoints/${endpoint.id}`, {
          method: "PATCH",
          bearer: tenant.apiKey,
          json: { headers: { Host: "evil.example" } }
        })
        expectProblem(patch, 422)
        const many = Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`X-H${i}`, "v"]))
        expectProblem(
          yield* request("/v1/endpoints", { bearer: tenant.apiKey, json: { url: receiver.url, headers: many } }),
          400
        )
        expectProblem(
          yield* request("/v1/endpoints", {
            bearer: tenant.apiKey,
            json: { url: receiver.url, headers: { "X-N": 1 } }
          }),
          400
        )
        // Nothing refused was stored.
        const [count] = yield* sql<{ readonly n: number }>`
          SELECT count(*)::int AS n FROM endpoints WHERE tenant_id = ${tenant.tenantId}`
        assert.strictEqual(count?.n, 1)
        assert.deepStrictEqual((yield* api.endpoints.get({ params: { id: endpoint.id } })).headers, {})
      })
    )
  }
)
