import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { assert, layer } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import { FetchHttpClient } from "effect/http"
import { OpenApi } from "effect/http-api"
import { renderOpenApiTypes } from "../packages/client/scripts/openapiTypes.ts"
import { type CodexClient, createCodexClient, verifyWebhook } from "../packages/client/src/index.ts"
import { Api } from "../src/api/Api.ts"
import { packageRoot } from "../src/domain/PackageInfo.ts"
import { fastWorker } from "./support/deliveryApi.ts"
import { runToExit } from "./support/processes.ts"
import { answer, makeReceiver, webhookOf } from "./support/receiver.ts"
import { TestServer, testServer } from "./support/testServer.ts"

/**
 * The TypeScript client package (packages/client, issue 24) against the real server: every route of the contract
 * through the promise client generated from /openapi.json, the operator header, errors and an unreachable server,
 * webhook verification on a real delivery, and the Effect client derived from the contract. The committed types
 * must match the contract (so CI catches a stale client), and the package must build.
 */

const adminToken = "client-test-admin-token-0123456789abcdef"

const clientRoot = join(packageRoot, "packages/client")

type Route = `${"GET" | "POST" | "PATCH" | "DELETE"} /${string}`

/** Every `METHOD /path` the contract serves, from the OpenAPI document the client is generated from. */
const contractRoutes = (): ReadonlyArray<string> =>
  Object.entries(OpenApi.fromApi(Api).paths).flatMap(([path, item]) =>
    ["get", "post", "patch", "delete", "put"].flatMap((method) =>
      method in item ? [`${method.toUpperCase()} ${path}`] : []
    )
  )

/** An answer openapi-fetch resolved with: `data` on success, `error` (the problem) otherwise. */
interface Answer<D, E> {
  readonly data?: D
  readonly error?: E
  readonly response: Response
}

/** The body of a successful answer with `status`. */
const ok = <D, E>(answer: Answer<D, E>, status: number): D => {
  assert.strictEqual(answer.response.status, status, JSON.stringify(answer.error))
  assert.isDefined(answer.data)
  return answer.data as D
}

/** A problem answer with `status`: openapi-fetch's `error` is the RFC 9457 document. */
const problem = <D, E>(answer: Answer<D, E>, status: number): Record<string, unknown> => {
  assert.strictEqual(answer.response.status, status)
  assert.strictEqual(answer.response.headers.get("content-type"), "application/problem+json")
  const body = answer.error as Record<string, unknown>
  assert.strictEqual(body.status, status)
  return body
}

/** The clients of one test: the admin's, a new tenant's, and every `METHOD /path` either called. */
interface Clients {
  readonly baseUrl: string
  readonly admin: CodexClient
  readonly tenant: CodexClient
  readonly tenantId: string
  readonly apiKey: string
  readonly called: ReadonlySet<string>
  /** A real receiver's URL, answering 204, for endpoints. */
  readonly receiverUrl: string
}

const makeClients = Effect.gen(function* () {
  const { baseUrl } = yield* TestServer
  const receiver = yield* makeReceiver((_, __, response) => answer(response, 204))
  const called = new Set<string>()
  const record = (client: CodexClient) => {
    client.use({ onRequest: ({ request, schemaPath }) => void called.add(`${request.method} ${schemaPath}`) })
    return client
  }
  const admin = record(createCodexClient({ baseUrl, adminToken }))
  const created = yield* Effect.promise(() => admin.POST("/admin/tenants", { body: { name: "Client tenant" } }))
  const { tenant, apiKey } = ok(created, 201)
  called.clear()
  const tenantClient = record(createCodexClient({ baseUrl, apiKey: apiKey.key }))
  return {
    baseUrl,
    admin,
    tenant: tenantClient,
    tenantId: tenant.id,
    apiKey: apiKey.key,
    called,
    receiverUrl: receiver.url
  } satisfies Clients
})

/** `POST /v1/endpoints` to the test's receiver; the endpoint. */
const createEndpoint = async (c: Clients, eventTypes: ReadonlyArray<string> = []) =>
  ok(await c.tenant.POST("/v1/endpoints", { body: { url: c.receiverUrl, eventTypes: [...eventTypes] } }), 201)

/** `POST /v1/events`; the event and how many deliveries it queued. */
const publish = async (c: Clients, type = "order.created") =>
  ok(await c.tenant.POST("/v1/events", { body: { type, data: { orderId: "o_1" } } }), 202)

/** An endpoint and one event delivered to it: the ids of both and of the delivery. */
const delivered = async (c: Clients) => {
  const endpoint = await createEndpoint(c)
  const { event } = await publish(c)
  const deliveries = ok(await c.tenant.GET("/v1/events/{id}/deliveries", { params: { path: { id: event.id } } }), 200)
  const [delivery] = deliveries.data
  assert.isDefined(delivery)
  return { endpoint, event, delivery }
}

/** The token a portal link carries in its fragment (`/portal#token=cps_...`). */
const portalToken = (url: string): string => new URL(url).hash.replace(/^#token=/, "")

const later = (ms: number) => new Date(Date.now() + ms).toISOString()

/**
 * One test per route: what it does through the client, asserted on the answer. A test that does not call its route
 * through the client fails, and so does a route without a test (below).
 */
const routeTests: Record<Route, (c: Clients) => Promise<void>> = {
  "GET /livez": async (c) => assert.strictEqual(ok(await c.tenant.GET("/livez"), 200).status, "pass"),
  "GET /readyz": async (c) => assert.strictEqual(ok(await c.tenant.GET("/readyz"), 200).status, "ready"),
  "GET /healthz": async (c) => assert.strictEqual(ok(await c.tenant.GET("/healthz"), 200).checks.database.status, "up"),
  "POST /admin/tenants": async (c) => {
    const created = ok(await c.admin.POST("/admin/tenants", { body: { name: "Acme", retentionSeconds: 3600 } }), 201)
    assert.strictEqual(created.tenant.name, "Acme")
    assert.strictEqual(created.tenant.retentionSeconds, 3600)
    assert.match(created.apiKey.key, /^ck_/)
  },
  "GET /admin/tenants": async (c) => {
    const page = ok(await c.admin.GET("/admin/tenants", { params: { query: { limit: "100" } } }), 200)
    assert.include(
      page.data.map((t) => t.id),
      c.tenantId
    )
  },
  "GET /admin/tenants/{id}": async (c) => {
    const tenant = ok(await c.admin.GET("/admin/tenants/{id}", { params: { path: { id: c.tenantId } } }), 200)
    assert.strictEqual(tenant.name, "Client tenant")
    assert.lengthOf(tenant.apiKeys, 1)
  },
  "PATCH /admin/tenants/{id}": async (c) => {
    const path = { id: c.tenantId }
    const tenant = ok(await c.admin.PATCH("/admin/tenants/{id}", { params: { path }, body: { name: "Renamed" } }), 200)
    assert.strictEqual(tenant.name, "Renamed")
  },
  "DELETE /admin/tenants/{id}": async (c) => {
    const deleted = ok(await c.admin.DELETE("/admin/tenants/{id}", { params: { path: { id: c.tenantId } } }), 202)
    assert.strictEqual(deleted.status, "deleting")
    problem(await c.tenant.GET("/v1/endpoints"), 401)
  },
  "POST /admin/tenants/{id}/api-keys": async (c) => {
    const issued = ok(await c.admin.POST("/admin/tenants/{id}/api-keys", { params: { path: { id: c.tenantId } } }), 201)
    const other = createCodexClient({ baseUrl: c.baseUrl, apiKey: issued.key })
    ok(await other.GET("/v1/endpoints"), 200)
  },
  "GET /admin/tenants/{id}/api-keys": async (c) => {
    const keys = ok(await c.admin.GET("/admin/tenants/{id}/api-keys", { params: { path: { id: c.tenantId } } }), 200)
    assert.lengthOf(keys.data, 1)
    assert.isTrue(c.apiKey.startsWith(keys.data[0]?.prefix ?? "-"))
  },
  "DELETE /admin/api-keys/{id}": async (c) => {
    const issued = ok(await c.admin.POST("/admin/tenants/{id}/api-keys", { params: { path: { id: c.tenantId } } }), 201)
    const revoked = await c.admin.DELETE("/admin/api-keys/{id}", { params: { path: { id: issued.id } } })
    assert.strictEqual(revoked.response.status, 204)
    problem(await createCodexClient({ baseUrl: c.baseUrl, apiKey: issued.key }).GET("/v1/endpoints"), 401)
  },
  "POST /v1/endpoints": async (c) => {
    const endpoint = await createEndpoint(c, ["order.*"])
    assert.strictEqual(endpoint.url, c.receiverUrl)
    assert.deepStrictEqual(endpoint.eventTypes, ["order.*"])
    assert.isTrue(endpoint.enabled)
  },
  "GET /v1/endpoints": async (c) => {
    const endpoint = await createEndpoint(c)
    const page = ok(await c.tenant.GET("/v1/endpoints"), 200)
    assert.deepStrictEqual(
      page.data.map((e) => e.id),
      [endpoint.id]
    )
  },
  "GET /v1/endpoints/{id}": async (c) => {
    const endpoint = await createEndpoint(c)
    const read = ok(await c.tenant.GET("/v1/endpoints/{id}", { params: { path: { id: endpoint.id } } }), 200)
    assert.strictEqual(read.health.circuit, "closed")
  },
  "PATCH /v1/endpoints/{id}": async (c) => {
    const endpoint = await createEndpoint(c)
    const body = { description: "orders", enabled: false }
    const updated = ok(await c.tenant.PATCH("/v1/endpoints/{id}", { params: { path: { id: endpoint.id } }, body }), 200)
    assert.strictEqual(updated.description, "orders")
    assert.isFalse(updated.enabled)
  },
  "DELETE /v1/endpoints/{id}": async (c) => {
    const path = { id: (await createEndpoint(c)).id }
    assert.strictEqual((await c.tenant.DELETE("/v1/endpoints/{id}", { params: { path } })).response.status, 204)
    problem(await c.tenant.GET("/v1/endpoints/{id}", { params: { path } }), 404)
  },
  "GET /v1/endpoints/{id}/stats": async (c) => {
    const path = { id: (await createEndpoint(c)).id }
    const stats = ok(await c.tenant.GET("/v1/endpoints/{id}/stats", { params: { path } }), 200)
    assert.strictEqual(stats.endpointId, path.id)
  },
  "GET /v1/endpoints/{id}/secret": async (c) => {
    const path = { id: (await createEndpoint(c)).id }
    assert.match(ok(await c.tenant.GET("/v1/endpoints/{id}/secret", { params: { path } }), 200).secret, /^whsec_/)
  },
  "POST /v1/endpoints/{id}/secret/rotate": async (c) => {
    const path = { id: (await createEndpoint(c)).id }
    const before = ok(await c.tenant.GET("/v1/endpoints/{id}/secret", { params: { path } }), 200)
    const after = ok(await c.tenant.POST("/v1/endpoints/{id}/secret/rotate", { params: { path } }), 200)
    assert.strictEqual(after.previousSecret, before.secret)
  },
  "POST /v1/events": async (c) => {
    await createEndpoint(c, ["order.*"])
    const published = await publish(c)
    assert.strictEqual(published.event.type, "order.created")
    assert.strictEqual(published.deliveriesQueued, 1)
  },
  "GET /v1/events": async (c) => {
    const { event } = await publish(c, "invoice.paid")
    const page = ok(await c.tenant.GET("/v1/events", { params: { query: { type: "invoice.*" } } }), 200)
    assert.deepStrictEqual(
      page.data.map((e) => e.id),
      [event.id]
    )
  },
  "GET /v1/events/{id}": async (c) => {
    const { event } = await publish(c)
    const read = ok(await c.tenant.GET("/v1/events/{id}", { params: { path: { id: event.id } } }), 200)
    assert.deepStrictEqual(read.data, { orderId: "o_1" })
  },
  "DELETE /v1/events/{id}/data": async (c) => {
    const { event } = await publish(c)
    const expunged = ok(await c.tenant.DELETE("/v1/events/{id}/data", { params: { path: { id: event.id } } }), 200)
    assert.isNull(expunged.data)
    assert.isString(expunged.expungedAt)
  },
  "GET /v1/events/{id}/deliveries": async (c) => {
    const { endpoint, delivery } = await delivered(c)
    assert.strictEqual(delivery.endpointId, endpoint.id)
  },
  "GET /v1/endpoints/{id}/deliveries": async (c) => {
    const { endpoint, delivery } = await delivered(c)
    const path = { id: endpoint.id }
    const page = ok(await c.tenant.GET("/v1/endpoints/{id}/deliveries", { params: { path } }), 200)
    assert.deepStrictEqual(
      page.data.map((d) => d.id),
      [delivery.id]
    )
  },
  "GET /v1/deliveries": async (c) => {
    const { endpoint, delivery } = await delivered(c)
    const query = { endpointId: endpoint.id, eventType: "order.created" }
    const page = ok(await c.tenant.GET("/v1/deliveries", { params: { query } }), 200)
    assert.deepStrictEqual(
      page.data.map((d) => d.id),
      [delivery.id]
    )
  },
  "GET /v1/deliveries/{id}": async (c) => {
    const { delivery } = await delivered(c)
    const read = ok(await c.tenant.GET("/v1/deliveries/{id}", { params: { path: { id: delivery.id } } }), 200)
    assert.isArray(read.attempts)
  },
  "POST /v1/deliveries/{id}/retry": async (c) => {
    const { delivery } = await delivered(c)
    const retried = ok(await c.tenant.POST("/v1/deliveries/{id}/retry", { params: { path: { id: delivery.id } } }), 202)
    assert.strictEqual(retried.id, delivery.id)
  },
  "POST /v1/endpoints/{id}/recover": async (c) => {
    const path = { id: (await createEndpoint(c)).id }
    const body = { since: later(-3_600_000) }
    assert.strictEqual(ok(await c.tenant.POST("/v1/endpoints/{id}/recover", { params: { path }, body }), 202).queued, 0)
  },
  "POST /v1/endpoints/{id}/test": async (c) => {
    const path = { id: (await createEndpoint(c)).id }
    const delivery = ok(await c.tenant.POST("/v1/endpoints/{id}/test", { params: { path } }), 202)
    assert.strictEqual(delivery.endpointId, path.id)
  },
  "POST /v1/api-keys": async (c) => {
    const body = { name: "Dashboard", scope: "read" as const, expiresAt: later(86_400_000) }
    const issued = ok(await c.tenant.POST("/v1/api-keys", { body }), 201)
    assert.strictEqual(issued.scope, "read")
    const reader = createCodexClient({ baseUrl: c.baseUrl, apiKey: issued.key })
    problem(await reader.POST("/v1/events", { body: { type: "order.created", data: {} } }), 403)
  },
  "GET /v1/api-keys": async (c) => {
    ok(await c.tenant.POST("/v1/api-keys", { body: { name: "Second" } }), 201)
    const page = ok(await c.tenant.GET("/v1/api-keys"), 200)
    assert.deepStrictEqual(
      page.data.map((k) => k.name),
      ["Second", ""]
    )
  },
  "DELETE /v1/api-keys/{id}": async (c) => {
    const [own] = ok(await c.tenant.GET("/v1/api-keys"), 200).data
    assert.isDefined(own)
    const path = { id: own.id }
    problem(await c.tenant.DELETE("/v1/api-keys/{id}", { params: { path } }), 409)
    const confirmed = await c.tenant.DELETE("/v1/api-keys/{id}", {
      params: { path, query: { confirm: "last-full-key" } }
    })
    assert.strictEqual(confirmed.response.status, 204)
  },
  "POST /v1/portal-sessions": async (c) => {
    const session = ok(await c.tenant.POST("/v1/portal-sessions", { body: { readOnly: true } }), 201)
    assert.match(session.url, /#token=cps_/)
    assert.isTrue(session.readOnly)
  },
  "DELETE /v1/portal-sessions/{id}": async (c) => {
    const session = ok(await c.tenant.POST("/v1/portal-sessions", { body: {} }), 201)
    const portal = createCodexClient({ baseUrl: c.baseUrl, apiKey: portalToken(session.url) })
    ok(await portal.GET("/v1/endpoints"), 200)
    const path = { id: session.id }
    assert.strictEqual((await c.tenant.DELETE("/v1/portal-sessions/{id}", { params: { path } })).response.status, 204)
    problem(await portal.GET("/v1/endpoints"), 401)
  },
  "POST /admin/tenants/{id}/portal-sessions": async (c) => {
    const path = { id: c.tenantId }
    const body = { expiresIn: 600 }
    const session = ok(await c.admin.POST("/admin/tenants/{id}/portal-sessions", { params: { path }, body }), 201)
    const portal = createCodexClient({ baseUrl: c.baseUrl, apiKey: portalToken(session.url) })
    ok(await portal.GET("/v1/endpoints"), 200)
  },
  "DELETE /admin/portal-sessions/{id}": async (c) => {
    const path = { id: c.tenantId }
    const session = ok(await c.admin.POST("/admin/tenants/{id}/portal-sessions", { params: { path }, body: null }), 201)
    const revoked = await c.admin.DELETE("/admin/portal-sessions/{id}", { params: { path: { id: session.id } } })
    assert.strictEqual(revoked.response.status, 204)
    problem(await createCodexClient({ baseUrl: c.baseUrl, apiKey: portalToken(session.url) }).GET("/v1/endpoints"), 401)
  },
  "GET /v1/event-types/openapi.json": async (c) => {
    ok(await c.tenant.POST("/v1/event-types", { body: { name: "order.created" } }), 201)
    const document = ok(await c.tenant.GET("/v1/event-types/openapi.json"), 200)
    assert.property(document.webhooks, "order.created")
  },
  "POST /v1/event-types": async (c) => {
    const schema = { type: "object", required: ["orderId"] }
    const created = ok(await c.tenant.POST("/v1/event-types", { body: { name: "order.created", schema } }), 201)
    assert.strictEqual(created.name, "order.created")
    problem(await c.tenant.POST("/v1/events", { body: { type: "order.created", data: {} } }), 422)
  },
  "GET /v1/event-types": async (c) => {
    ok(await c.tenant.POST("/v1/event-types", { body: { name: "order.created" } }), 201)
    assert.deepStrictEqual(
      ok(await c.tenant.GET("/v1/event-types"), 200).data.map((t) => t.name),
      ["order.created"]
    )
  },
  "GET /v1/event-types/{name}": async (c) => {
    ok(await c.tenant.POST("/v1/event-types", { body: { name: "order.created", description: "An order" } }), 201)
    const read = ok(await c.tenant.GET("/v1/event-types/{name}", { params: { path: { name: "order.created" } } }), 200)
    assert.strictEqual(read.description, "An order")
  },
  "PATCH /v1/event-types/{name}": async (c) => {
    ok(await c.tenant.POST("/v1/event-types", { body: { name: "order.created" } }), 201)
    const path = { name: "order.created" }
    const updated = ok(
      await c.tenant.PATCH("/v1/event-types/{name}", { params: { path }, body: { deprecated: true } }),
      200
    )
    assert.isTrue(updated.deprecated)
  },
  "DELETE /v1/event-types/{name}": async (c) => {
    ok(await c.tenant.POST("/v1/event-types", { body: { name: "order.created" } }), 201)
    const path = { name: "order.created" }
    assert.strictEqual((await c.tenant.DELETE("/v1/event-types/{name}", { params: { path } })).response.status, 204)
    problem(await c.tenant.GET("/v1/event-types/{name}", { params: { path } }), 404)
  }
}

// The delivery worker runs: every endpoint here points at a real receiver answering 204.
const serverConfig = { adminToken: Option.some(Redacted.make(adminToken)), delivery: fastWorker() }

layer(testServer({ config: serverConfig }), { excludeTestServices: true })("the TypeScript client", (it) => {
  it.effect("has a test for every route of the contract, and none for a route it does not serve", () =>
    Effect.sync(() => assert.deepStrictEqual([...contractRoutes()].sort(), Object.keys(routeTests).sort()))
  )

  for (const [route, run] of Object.entries(routeTests)) {
    it.effect(`calls ${route}`, () =>
      Effect.scoped(
        Effect.gen(function* () {
          const clients = yield* makeClients
          yield* Effect.promise(() => run(clients))
          assert.isTrue(clients.called.has(route), `${route} was called through the client`)
        })
      )
    )
  }

  it.effect("answers problems as `error`, the status on `response`; rejects only when no server answers", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const c = yield* makeClients
        const missing = yield* Effect.promise(() =>
          c.tenant.GET("/v1/endpoints/{id}", { params: { path: { id: "ep_missing" } } })
        )
        assert.strictEqual(problem(missing, 404).title, "Not Found")
        const invalid = yield* Effect.promise(() => c.tenant.POST("/v1/endpoints", { body: { url: "not a url" } }))
        assert.deepStrictEqual((problem(invalid, 400).errors as ReadonlyArray<{ path: unknown }>)[0]?.path, [
          "payload",
          "url"
        ])
        const anonymous = createCodexClient({ baseUrl: c.baseUrl })
        problem(yield* Effect.promise(() => anonymous.GET("/admin/tenants")), 401)
        // A closed port: fetch rejects, there is no answer to resolve with.
        const down = createCodexClient({ baseUrl: "http://127.0.0.1:9", adminToken })
        const failure = yield* Effect.promise(() =>
          down.GET("/livez").then(
            () => "answered",
            (e: unknown) => e
          )
        )
        assert.instanceOf(failure, TypeError)
      })
    )
  )

  it.effect(
    "with the admin token and `tenant`, acts as that tenant on /v1 (Codex-Tenant); /admin stays the admin's",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const c = yield* makeClients
          const operator = createCodexClient({ baseUrl: c.baseUrl, adminToken, tenant: c.tenantId })
          const created = yield* Effect.promise(() =>
            operator.POST("/v1/endpoints", { body: { url: c.receiverUrl, description: "by the operator" } })
          )
          const endpoint = ok(created, 201)
          const seen = ok(yield* Effect.promise(() => c.tenant.GET("/v1/endpoints")), 200)
          assert.deepStrictEqual(
            seen.data.map((e) => e.id),
            [endpoint.id]
          )
          ok(
            yield* Effect.promise(() => operator.GET("/admin/tenants/{id}", { params: { path: { id: c.tenantId } } })),
            200
          )
          const nobody = createCodexClient({ baseUrl: c.baseUrl, adminToken, tenant: "ten_00000000000000000000000000" })
          problem(yield* Effect.promise(() => nobody.GET("/v1/endpoints")), 404)
          // The Effect client sends the same header.
          const { makeCodexClient } = yield* Effect.promise(() => import("../packages/client/src/effect.ts"))
          const effectOperator = yield* makeCodexClient({ baseUrl: c.baseUrl, adminToken, tenant: c.tenantId }).pipe(
            Effect.provide(FetchHttpClient.layer)
          )
          const listed = yield* effectOperator.endpoints.list({ query: {} })
          assert.deepStrictEqual(
            listed.data.map((e) => e.id),
            [endpoint.id]
          )
        })
      )
  )

  it.effect(
    "verifies a real delivery's signature with the endpoint's secret; a changed body or another secret fails",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const c = yield* makeClients
          const receiver = yield* makeReceiver((_, __, response) => answer(response, 204))
          const endpoint = ok(
            yield* Effect.promise(() => c.tenant.POST("/v1/endpoints", { body: { url: receiver.url } })),
            201
          )
          const path = { id: endpoint.id }
          const { secret } = ok(
            yield* Effect.promise(() => c.tenant.GET("/v1/endpoints/{id}/secret", { params: { path } })),
            200
          )
          const { event } = yield* Effect.promise(() => publish(c))
          const webhook = yield* webhookOf(receiver, event.id)
          const verified = verifyWebhook<{ orderId: string }>({ secret, body: webhook.body, headers: webhook.headers })
          assert.deepStrictEqual(verified, {
            ok: true,
            message: {
              id: event.id,
              type: "order.created",
              timestamp: verified.ok ? verified.message.timestamp : "",
              data: { orderId: "o_1" }
            }
          })
          const headers = new Headers(webhook.headers as Record<string, string>)
          assert.isTrue(
            verifyWebhook({ secret: ["whsec_b3RoZXI=", secret], body: new TextEncoder().encode(webhook.body), headers })
              .ok
          )
          const tampered = verifyWebhook({ secret, body: webhook.body.replace("o_1", "o_2"), headers })
          assert.deepStrictEqual(tampered, { ok: false, reason: "No matching signature found" })
          assert.isFalse(verifyWebhook({ secret: "whsec_b3RoZXI=", body: webhook.body, headers }).ok)
          assert.isFalse(verifyWebhook({ secret, body: webhook.body, headers: {} }).ok)
        })
      )
  )

  it.effect("the Effect client is the contract's: typed answers, typed problems, the same credentials", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { makeCodexClient } = yield* Effect.promise(() => import("../packages/client/src/effect.ts"))
        const c = yield* makeClients
        const tenant = yield* makeCodexClient({ baseUrl: c.baseUrl, apiKey: c.apiKey })
        const endpoint = yield* tenant.endpoints.create({ payload: { url: c.receiverUrl } })
        const read = yield* tenant.endpoints.get({ params: { id: endpoint.id } })
        assert.strictEqual(read.url, c.receiverUrl)
        const missing = yield* Effect.flip(tenant.endpoints.get({ params: { id: "ep_missing" } }))
        assert.strictEqual(missing._tag, "NotFound")
        const admin = yield* makeCodexClient({ baseUrl: c.baseUrl, adminToken })
        assert.strictEqual((yield* admin.admin.getTenant({ params: { id: c.tenantId } })).id, c.tenantId)
        const anonymous = yield* makeCodexClient({ baseUrl: c.baseUrl })
        assert.strictEqual((yield* Effect.flip(anonymous.endpoints.list({ query: {} })))._tag, "Unauthorized")
      }).pipe(Effect.provide(FetchHttpClient.layer))
    )
  )

  it.effect(
    "builds with `npm run client:build`: each entry of its exports map loads and works",
    () =>
      Effect.gen(function* () {
        const { baseUrl } = yield* TestServer
        const built = yield* Effect.promise(() =>
          runToExit(
            {
              file: process.execPath,
              args: ["node_modules/typescript/bin/tsc", "-p", "packages/client/tsconfig.json"]
            },
            process.env,
            120_000
          )
        )
        assert.strictEqual(built.code, 0, built.stdout + built.stderr)
        const manifest = JSON.parse(readFileSync(join(clientRoot, "package.json"), "utf8")) as {
          readonly exports: Record<string, { readonly types: string; readonly default: string } | string>
        }
        const entry = (name: string) => {
          const target = manifest.exports[name]
          assert.isObject(target, name)
          const { types, default: main } = target as { readonly types: string; readonly default: string }
          assert.isTrue(existsSync(join(clientRoot, types)), `${name}: ${types} was built`)
          return pathToFileURL(join(clientRoot, main)).href
        }
        const main = (yield* Effect.promise(
          () => import(entry("."))
        )) as typeof import("../packages/client/src/index.ts")
        const effect = (yield* Effect.promise(
          () => import(entry("./effect"))
        )) as typeof import("../packages/client/src/effect.ts")
        const live = yield* Effect.promise(() => main.createCodexClient({ baseUrl }).GET("/livez"))
        assert.strictEqual(ok(live, 200).status, "pass")
        assert.isFunction(main.verifyWebhook)
        assert.isFunction(effect.makeCodexClient)
        assert.strictEqual(effect.Api.identifier, "codex-api")
      }),
    120_000
  )

  it.effect("the committed types are the contract's: regenerate with `npm run client:generate` when this fails", () =>
    Effect.promise(async () => {
      const committed = readFileSync(new URL("../packages/client/src/generated/openapi.ts", import.meta.url), "utf8")
      const fresh = await renderOpenApiTypes()
      assert.isTrue(
        committed === fresh,
        "packages/client/src/generated/openapi.ts is stale: the contract changed. Run `npm run client:generate` and commit it."
      )
    })
  )
})
