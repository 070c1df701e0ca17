import { assert, layer } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import { HttpApi } from "effect/http-api"
import { Api } from "../src/api/Api.ts"
import { createTenant, request, type WireResponse } from "./support/http.ts"
import { parsedLogs } from "./support/observedServer.ts"
import { poll } from "./support/poll.ts"
import { expectProblem } from "./support/problems.ts"
import { testServerWithSql } from "./support/sharedDatabase.ts"
import { TestServer } from "./support/testServer.ts"

/**
 * The operator model (issue 23): the admin token with `Codex-Tenant: ten_...` acts as that tenant on every `/v1`
 * route (as Stripe's `Stripe-Account` does), audited in the access log; without the header the admin token stays
 * refused on `/v1`. On the real server and database.
 */

const adminToken = "adm_operator-header-test-token-0123456789"

const json = (response: WireResponse, status: number): Record<string, unknown> => {
  assert.strictEqual(response.status, status, response.text)
  return JSON.parse(response.text) as Record<string, unknown>
}

/** A request as the operator acting as `tenantId`. */
const asOperator = (tenantId: string, path: string, options: Parameters<typeof request>[1] = {}) =>
  request(path, { ...options, bearer: adminToken, headers: { "codex-tenant": tenantId } })

const tenants = Effect.gen(function* () {
  const a = yield* createTenant("Operated A", { adminToken })
  const b = yield* createTenant("Operated B", { adminToken })
  return { a, b }
})

/** Every `/v1` operation of the contract, its path's parameters filled with made-up ids. */
const v1Operations = (): ReadonlyArray<{ readonly method: string; readonly path: string }> => {
  const operations: Array<{ method: string; path: string }> = []
  HttpApi.reflect(Api, {
    onGroup: () => {},
    onEndpoint: ({ endpoint }) => {
      if (!endpoint.path.startsWith("/v1/")) return
      operations.push({ method: endpoint.method, path: endpoint.path.replaceAll(/:[A-Za-z]+/g, "x_unknown") })
    }
  })
  return operations
}

layer(testServerWithSql({ config: { adminToken: Option.some(Redacted.make(adminToken)) } }), {
  excludeTestServices: true
})("the operator header (Codex-Tenant)", (it) => {
  it.effect("without the header the admin token is refused on every /v1 operation (401), as before", () =>
    Effect.gen(function* () {
      const operations = v1Operations()
      assert.isAbove(operations.length, 20, "the whole /v1 contract")
      for (const { method, path } of operations) {
        const response = yield* request(path, { method, bearer: adminToken })
        const problem = expectProblem(response, 401)
        assert.include(String(problem.detail), "Codex-Tenant", `${method} ${path}`)
        assert.strictEqual(response.headers.get("www-authenticate"), "Bearer")
      }
    })
  )

  it.effect("events: publish, list, get and expunge as the tenant; the other tenant sees none of it", () =>
    Effect.gen(function* () {
      const { a, b } = yield* tenants
      const published = json(
        yield* asOperator(a.tenantId, "/v1/events", { json: { type: "order.created", data: { n: 1 } } }),
        202
      )
      const eventId = (published.event as { id: string }).id
      const listed = json(yield* request("/v1/events?type=order.created", { bearer: a.apiKey }), 200)
      assert.deepStrictEqual(
        (listed.data as ReadonlyArray<{ id: string }>).map((e) => e.id),
        [eventId],
        "published into A, seen by A's own key"
      )
      json(yield* asOperator(a.tenantId, `/v1/events/${eventId}`), 200)
      expectProblem(yield* asOperator(b.tenantId, `/v1/events/${eventId}`), 404)
      const empty = json(yield* request("/v1/events?type=order.created", { bearer: b.apiKey }), 200)
      assert.lengthOf(empty.data as ReadonlyArray<unknown>, 0)
      json(yield* asOperator(a.tenantId, `/v1/events/${eventId}/data`, { method: "DELETE" }), 200)
    })
  )

  it.effect("endpoints, deliveries and stats: created, read, changed, rotated as the tenant", () =>
    Effect.gen(function* () {
      const { a, b } = yield* tenants
      const endpoint = json(
        yield* asOperator(a.tenantId, "/v1/endpoints", { json: { url: "http://127.0.0.1:1029/hook" } }),
        201
      ) as { id: string }
      json(yield* request(`/v1/endpoints/${endpoint.id}`, { bearer: a.apiKey }), 200)
      expectProblem(yield* asOperator(b.tenantId, `/v1/endpoints/${endpoint.id}`), 404)
      json(
        yield* asOperator(a.tenantId, `/v1/endpoints/${endpoint.id}`, { method: "PATCH", json: { description: "op" } }),
        200
      )
      json(yield* asOperator(a.tenantId, "/v1/endpoints"), 200)
      json(yield* asOperator(a.tenantId, `/v1/endpoints/${endpoint.id}/stats`), 200)
      json(yield* asOperator(a.tenantId, "/v1/events", { json: { type: "order.paid", data: {} } }), 202)
      const deliveries = json(yield* asOperator(a.tenantId, `/v1/deliveries?endpointId=${endpoint.id}`), 200)
      const delivery = (deliveries.data as ReadonlyArray<{ id: string }>)[0]
      assert.isDefined(delivery)
      json(yield* asOperator(a.tenantId, `/v1/deliveries/${delivery?.id}`), 200)
      expectProblem(yield* asOperator(b.tenantId, `/v1/deliveries/${delivery?.id}`), 404)
      json(yield* asOperator(a.tenantId, `/v1/endpoints/${endpoint.id}/secret/rotate`, { method: "POST" }), 200)
    })
  )

  it.effect("event types, API keys and portal sessions: the operator manages the tenant's own", () =>
    Effect.gen(function* () {
      const { a, b } = yield* tenants
      json(yield* asOperator(a.tenantId, "/v1/event-types", { json: { name: "order.created" } }), 201)
      json(yield* request("/v1/event-types/order.created", { bearer: a.apiKey }), 200)
      expectProblem(yield* request("/v1/event-types/order.created", { bearer: b.apiKey }), 404)
      const key = json(yield* asOperator(a.tenantId, "/v1/api-keys", { json: { name: "from the operator" } }), 201) as {
        key: string
      }
      json(yield* request("/v1/events", { bearer: key.key }), 200)
      const keys = json(yield* asOperator(a.tenantId, "/v1/api-keys"), 200)
      assert.include(JSON.stringify(keys), "from the operator")
      assert.notInclude(JSON.stringify(json(yield* asOperator(b.tenantId, "/v1/api-keys"), 200)), "from the operator")
      // Portal sessions: the operator mints one for the tenant (a link scoped to A), and revokes it.
      const session = json(yield* asOperator(a.tenantId, "/v1/portal-sessions", { json: { readOnly: true } }), 201) as {
        id: string
        url: string
      }
      const token = new URL(session.url).hash.replace(/^#token=/, "").split("&")[0] ?? ""
      json(yield* request("/v1/events", { bearer: token }), 200)
      expectProblem(yield* asOperator(b.tenantId, `/v1/portal-sessions/${session.id}`, { method: "DELETE" }), 404)
      const revoked = yield* asOperator(a.tenantId, `/v1/portal-sessions/${session.id}`, { method: "DELETE" })
      assert.strictEqual(revoked.status, 204, revoked.text)
      expectProblem(yield* request("/v1/events", { bearer: token }), 401)
    })
  )

  it.effect("refusals: unknown or deleting tenant 404; a tenant's key naming another tenant 403; own name fine", () =>
    Effect.gen(function* () {
      const { a, b } = yield* tenants
      expectProblem(yield* asOperator("ten_00000000000000000000000000", "/v1/events"), 404)
      expectProblem(yield* asOperator("not a tenant id", "/v1/events"), 404)
      const crossing = yield* request("/v1/events", { bearer: a.apiKey, headers: { "codex-tenant": b.tenantId } })
      expectProblem(crossing, 403)
      json(yield* request("/v1/events", { bearer: a.apiKey, headers: { "codex-tenant": a.tenantId } }), 200)
      // A wrong admin token with the header is just an unknown key.
      const forged = yield* request("/v1/events", { bearer: `${adminToken}x`, headers: { "codex-tenant": a.tenantId } })
      expectProblem(forged, 401)
      // The admin API is not reachable with a tenant's key, header or not.
      expectProblem(
        yield* request("/admin/tenants", { bearer: a.apiKey, headers: { "codex-tenant": a.tenantId } }),
        401
      )
      // A tenant being deleted cannot be acted as (its keys stop at once; so does the operator's access).
      const doomed = yield* createTenant("Operated, doomed", { adminToken })
      json(yield* asOperator(doomed.tenantId, "/v1/events"), 200)
      json(yield* request(`/admin/tenants/${doomed.tenantId}`, { method: "DELETE", bearer: adminToken }), 202)
      expectProblem(yield* asOperator(doomed.tenantId, "/v1/events"), 404)
    })
  )

  it.effect("audited: the access line names the tenant and says operator; the tenant's quota is the one counted", () =>
    Effect.gen(function* () {
      const { a } = yield* tenants
      const server = yield* TestServer
      const response = yield* request("/v1/events", {
        bearer: adminToken,
        headers: { "codex-tenant": a.tenantId, "x-request-id": `operator-audit-${a.tenantId}` }
      })
      json(response, 200)
      assert.include(response.headers.get("ratelimit-policy") ?? "", '"tenant"')
      const lines = yield* poll(
        "the operator's access line",
        Effect.sync(() =>
          parsedLogs(server.logs).filter(
            (e) => e.message === "request" && e.requestId === `operator-audit-${a.tenantId}`
          )
        ),
        (found) => found.length > 0
      )
      assert.strictEqual(lines[0]?.tenantId, a.tenantId)
      assert.strictEqual(lines[0]?.operator, true)
      // A tenant's own key: no operator field.
      const own = yield* request("/v1/events", { bearer: a.apiKey, headers: { "x-request-id": `own-${a.tenantId}` } })
      json(own, 200)
      const ownLines = yield* poll(
        "the tenant's access line",
        Effect.sync(() =>
          parsedLogs(server.logs).filter((e) => e.message === "request" && e.requestId === `own-${a.tenantId}`)
        ),
        (found) => found.length > 0
      )
      assert.isUndefined(ownLines[0]?.operator)
      assert.notInclude(server.logs.join("\n"), adminToken, "the token itself is never logged")
    })
  )
})
