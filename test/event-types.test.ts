import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import type { CatalogEventType } from "../src/domain/EventTypeCatalog.ts"
import { createTenant, isReplay, request, type WireResponse } from "./support/http.ts"
import { expectProblem } from "./support/problems.ts"
import { testServerWithSql } from "./support/sharedDatabase.ts"

/**
 * The event-type catalog (issue 22) over HTTP, on the real server and database: CRUD with validation on save and
 * tenant isolation, every publish outcome (valid, invalid with pointers, unknown in strict mode, deprecated, archived,
 * idempotent replays), and strict-mode subscription checks on endpoints.
 */

const json = (response: WireResponse, status: number): unknown => {
  assert.strictEqual(response.status, status, response.text)
  return JSON.parse(response.text)
}

const orderSchema = {
  type: "object",
  required: ["orderId", "amount"],
  properties: {
    orderId: { type: "string", pattern: "^o_" },
    amount: { type: "integer", minimum: 0 },
    currency: { type: "string", enum: ["EUR", "USD"] },
    placedAt: { type: "string", format: "date-time" }
  }
}

const createType = (bearer: string, body: Record<string, unknown>) => request("/v1/event-types", { bearer, json: body })

const publish = (bearer: string, type: string, data: unknown, idempotencyKey?: string) =>
  request("/v1/events", { bearer, json: { type, data }, idempotencyKey })

const patchType = (bearer: string, name: string, body: Record<string, unknown>) =>
  request(`/v1/event-types/${name}`, { method: "PATCH", bearer, json: body })

const setStrict = (tenantId: string, strict: boolean) =>
  Effect.map(
    request(`/admin/tenants/${tenantId}`, { method: "PATCH", json: { strictEventTypes: strict } }),
    (response) => assert.strictEqual((json(response, 200) as { strictEventTypes: boolean }).strictEventTypes, strict)
  )

/** The `errors` of a 422 as `pointer: message` pairs. */
const violations = (response: WireResponse) => {
  const problem = expectProblem(response, 422)
  assert.isArray(problem.errors, response.text)
  return (problem.errors as ReadonlyArray<{ pointer: string; message: string }>).map((e) => e.pointer)
}

layer(testServerWithSql(), { excludeTestServices: true })("event-type catalog", (it) => {
  it.effect("POST creates, GET reads and lists, PATCH changes, DELETE removes; names are the tenant's own", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Catalog owner")
      const other = yield* createTenant("Catalog neighbour")
      const created = json(
        yield* createType(tenant.apiKey, {
          name: "order.created",
          description: "An order was placed.",
          schema: orderSchema,
          examples: [{ orderId: "o_1", amount: 4200 }]
        }),
        201
      ) as CatalogEventType
      assert.deepInclude(created, {
        name: "order.created",
        description: "An order was placed.",
        schema: orderSchema,
        examples: [{ orderId: "o_1", amount: 4200 }],
        deprecated: false,
        deprecatedAt: null,
        archived: false,
        archivedAt: null
      })
      // The schema comes back as written, member order included.
      const read = yield* request("/v1/event-types/order.created", { bearer: tenant.apiKey })
      assert.include(read.text, JSON.stringify(orderSchema))
      assert.deepStrictEqual(json(read, 200), created)

      // The same name again: 409; another tenant may use it, and sees nothing of the first's.
      expectProblem(yield* createType(tenant.apiKey, { name: "order.created" }), 409)
      expectProblem(yield* request("/v1/event-types/order.created", { bearer: other.apiKey }), 404)
      const neighbours = json(yield* request("/v1/event-types", { bearer: other.apiKey }), 200) as {
        data: ReadonlyArray<CatalogEventType>
      }
      assert.deepStrictEqual(neighbours.data, [])
      json(yield* createType(other.apiKey, { name: "order.created" }), 201)
      expectProblem(yield* patchType(other.apiKey, "order.shipped", { description: "x" }), 404)
      expectProblem(yield* request("/v1/event-types/order.created", { method: "DELETE", bearer: "ck_nope" }), 401)

      json(yield* createType(tenant.apiKey, { name: "order.shipped" }), 201)
      const listed = json(yield* request("/v1/event-types?limit=1", { bearer: tenant.apiKey }), 200) as {
        data: ReadonlyArray<CatalogEventType>
        nextCursor: string | null
      }
      assert.deepStrictEqual(
        listed.data.map((t) => t.name),
        ["order.shipped"]
      )
      assert.isString(listed.nextCursor)
      const rest = json(
        yield* request(`/v1/event-types?limit=5&cursor=${listed.nextCursor}`, { bearer: tenant.apiKey }),
        200
      ) as { data: ReadonlyArray<CatalogEventType>; nextCursor: string | null }
      assert.deepStrictEqual(
        rest.data.map((t) => t.name),
        ["order.created"]
      )
      assert.isNull(rest.nextCursor)

      const patched = json(
        yield* patchType(tenant.apiKey, "order.created", { description: "Placed.", deprecated: true }),
        200
      ) as CatalogEventType
      assert.strictEqual(patched.description, "Placed.")
      assert.deepStrictEqual(patched.schema, orderSchema, "absent members stay")
      assert.isTrue(patched.deprecated)
      assert.isString(patched.deprecatedAt)
      const again = json(yield* patchType(tenant.apiKey, "order.created", { deprecated: true }), 200)
      assert.strictEqual((again as CatalogEventType).deprecatedAt, patched.deprecatedAt, "the first time is kept")
      const cleared = json(yield* patchType(tenant.apiKey, "order.created", { schema: null }), 200)
      assert.isNull((cleared as CatalogEventType).schema)

      const deleted = yield* request("/v1/event-types/order.created", { method: "DELETE", bearer: tenant.apiKey })
      assert.strictEqual(deleted.status, 204, deleted.text)
      expectProblem(yield* request("/v1/event-types/order.created", { bearer: tenant.apiKey }), 404)
      expectProblem(yield* request("/v1/event-types/order.created", { method: "DELETE", bearer: tenant.apiKey }), 404)
      // The neighbour's type of the same name is untouched.
      json(yield* request("/v1/event-types/order.created", { bearer: other.apiKey }), 200)
    })
  )

  it.effect("validated on save: the schema compiles, examples match it (422 with pointers), names reserved", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Catalog validation")
      const bad = yield* createType(tenant.apiKey, { name: "bad.schema", schema: { type: "nonsense" } })
      assert.deepStrictEqual(violations(bad), ["/schema"])
      const unresolved = yield* createType(tenant.apiKey, {
        name: "bad.ref",
        schema: { $ref: "https://example.com/elsewhere.json" }
      })
      assert.deepStrictEqual(violations(unresolved), ["/schema"])
      const examples = yield* createType(tenant.apiKey, {
        name: "bad.examples",
        schema: orderSchema,
        examples: [{ orderId: "o_1", amount: 1 }, { orderId: "x", amount: -1 }, { amount: 2 }]
      })
      assert.deepStrictEqual(violations(examples), ["/examples/1/orderId", "/examples/1/amount", "/examples/2/orderId"])
      expectProblem(yield* createType(tenant.apiKey, { name: "codex.endpoint.created" }), 422)
      expectProblem(yield* createType(tenant.apiKey, { name: "openapi.json" }), 422)
      expectProblem(yield* createType(tenant.apiKey, { name: "spaces are not allowed" }), 400)
      expectProblem(yield* createType(tenant.apiKey, { name: "nul.text", description: "a\u0000b" }), 400)
      expectProblem(yield* createType(tenant.apiKey, { name: ".." }), 422)
      // A name that is no type name (NUL, too long) names nothing: 404 before any query.
      for (const name of ["%00", "x".repeat(300)]) {
        expectProblem(yield* request(`/v1/event-types/${name}`, { bearer: tenant.apiKey }), 404)
        expectProblem(yield* patchType(tenant.apiKey, name, { description: "x" }), 404)
      }
      // The longest name (128 characters) is a path parameter like any other: read, changed, deleted by it.
      const longest = "l".repeat(128)
      json(yield* createType(tenant.apiKey, { name: longest }), 201)
      json(yield* request(`/v1/event-types/${longest}`, { bearer: tenant.apiKey }), 200)
      json(yield* patchType(tenant.apiKey, longest, { description: "long" }), 200)
      const removed = yield* request(`/v1/event-types/${longest}`, { method: "DELETE", bearer: tenant.apiKey })
      assert.oneOf(removed.status, [200, 204], removed.text)
      // Nothing of the refused ones was stored.
      expectProblem(yield* request("/v1/event-types/bad.schema", { bearer: tenant.apiKey }), 404)

      // PATCH checks the type as it will be: new examples against the stored schema, a new schema against them.
      json(yield* createType(tenant.apiKey, { name: "order.paid", schema: orderSchema }), 201)
      const wrongExample = yield* patchType(tenant.apiKey, "order.paid", { examples: [{ orderId: "o_2" }] })
      assert.deepStrictEqual(violations(wrongExample), ["/examples/0/amount"])
      json(yield* patchType(tenant.apiKey, "order.paid", { examples: [{ orderId: "o_2", amount: 3 }] }), 200)
      const strictSchema = yield* patchType(tenant.apiKey, "order.paid", {
        schema: { ...orderSchema, required: ["orderId", "amount", "currency"] }
      })
      assert.deepStrictEqual(violations(strictSchema), ["/examples/0/currency"])
    })
  )

  it.effect("publish: valid data passes; invalid data is a 422 naming each violation's pointer; text kept", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Catalog publisher")
      json(yield* createType(tenant.apiKey, { name: "order.created", schema: orderSchema }), 201)
      // Exact text: member order and number spelling reach storage unchanged.
      const raw = '{"type":"order.created","data":{"amount":4200,"orderId":"o_1","currency":"EUR","big":1.50}}'
      const accepted = yield* request("/v1/events", { bearer: tenant.apiKey, raw })
      const event = (json(accepted, 202) as { event: { id: string } }).event
      assert.isNull(accepted.headers.get("deprecation"))
      const stored = yield* request(`/v1/events/${event.id}`, { bearer: tenant.apiKey })
      assert.include(stored.text, '"data":{"amount":4200,"orderId":"o_1","currency":"EUR","big":1.50}')

      const refused = yield* publish(tenant.apiKey, "order.created", {
        orderId: 7,
        amount: 1.5,
        currency: "GBP",
        placedAt: "yesterday"
      })
      assert.deepStrictEqual(violations(refused), ["/data/orderId", "/data/amount", "/data/currency", "/data/placedAt"])
      assert.deepStrictEqual(violations(yield* publish(tenant.apiKey, "order.created", {})), [
        "/data/orderId",
        "/data/amount"
      ])
      // A type without a catalog entry, outside strict mode: accepted as before.
      json(yield* publish(tenant.apiKey, "not.catalogued", { anything: true }), 202)

      // A changed schema applies to the next publish (the cached validator is of the old version).
      json(yield* patchType(tenant.apiKey, "order.created", { schema: { type: "object", required: ["sku"] } }), 200)
      assert.deepStrictEqual(violations(yield* publish(tenant.apiKey, "order.created", { orderId: "o_1" })), [
        "/data/sku"
      ])
      json(yield* publish(tenant.apiKey, "order.created", { sku: "s" }), 202)
      // Deleted and created again with another schema: a new version too.
      yield* request("/v1/event-types/order.created", { method: "DELETE", bearer: tenant.apiKey })
      json(yield* createType(tenant.apiKey, { name: "order.created", schema: orderSchema }), 201)
      assert.deepStrictEqual(violations(yield* publish(tenant.apiKey, "order.created", { sku: "s" })), [
        "/data/orderId",
        "/data/amount"
      ])
    })
  )

  it.effect(
    "a tenant's patterns cannot stall the API: RE2 runs them; lookaround is a 422 on save naming the pattern",
    () =>
      Effect.gen(function* () {
        const tenant = yield* createTenant("Catalog patterns")
        const lookahead = yield* createType(tenant.apiKey, {
          name: "bad.pattern",
          schema: { type: "object", properties: { id: { type: "string", pattern: "^(?=o_)o_\\w+$" } } }
        })
        assert.deepStrictEqual(violations(lookahead), ["/schema"])
        assert.include(lookahead.text, "linear time")
        // Exponential on a backtracking engine: a 10,000-character value would hold the process far past the test's
        // timeout, and with it every other request. Answered at once, and the server still answers others.
        const evil = { type: "object", properties: { id: { type: "string", pattern: "^(a+)+$" } } }
        json(yield* createType(tenant.apiKey, { name: "evil.pattern", schema: evil }), 201)
        const hostile = yield* publish(tenant.apiKey, "evil.pattern", { id: `${"a".repeat(10_000)}!` })
        assert.deepStrictEqual(violations(hostile), ["/data/id"])
        json(yield* publish(tenant.apiKey, "evil.pattern", { id: "aaaa" }), 202)
      })
  )

  it.effect("publish: strict mode refuses unknown types; archived refused; deprecated answered with Deprecation", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Catalog strict")
      json(yield* createType(tenant.apiKey, { name: "user.signed_up" }), 201)
      yield* setStrict(tenant.tenantId, true)
      assert.deepStrictEqual(violations(yield* publish(tenant.apiKey, "user.unknown", { a: 1 })), ["/type"])
      json(yield* publish(tenant.apiKey, "user.signed_up", { a: 1 }), 202)

      const deprecated = json(yield* patchType(tenant.apiKey, "user.signed_up", { deprecated: true }), 200)
      const since = Math.floor(Date.parse((deprecated as CatalogEventType).deprecatedAt ?? "") / 1000)
      const first = yield* publish(tenant.apiKey, "user.signed_up", { a: 2 }, "dep-1")
      json(first, 202)
      assert.strictEqual(first.headers.get("deprecation"), `@${since}`)
      // ...and /openapi.json declares that header on the publish's 202, with a pattern the value matches.
      const document = JSON.parse((yield* request("/openapi.json")).text) as {
        paths: Record<string, { post: { responses: Record<string, { headers?: Record<string, unknown> }> } }>
      }
      const header = document.paths["/v1/events"]?.post.responses["202"]?.headers?.Deprecation as {
        schema: { pattern: string }
      }
      assert.match(`@${since}`, new RegExp(header.schema.pattern))
      // A replay answers as the first request did, header included, even once the type is no longer deprecated.
      json(yield* patchType(tenant.apiKey, "user.signed_up", { deprecated: false }), 200)
      const replayed = yield* publish(tenant.apiKey, "user.signed_up", { a: 2 }, "dep-1")
      assert.isTrue(isReplay(replayed))
      assert.strictEqual(replayed.text, first.text)
      assert.strictEqual(replayed.headers.get("deprecation"), `@${since}`)
      assert.isNull((yield* publish(tenant.apiKey, "user.signed_up", { a: 3 })).headers.get("deprecation"))

      json(yield* patchType(tenant.apiKey, "user.signed_up", { archived: true }), 200)
      const archived = yield* publish(tenant.apiKey, "user.signed_up", { a: 4 }, "arch-1")
      assert.deepStrictEqual(violations(archived), ["/type"])
      // The refusal is what the key answers from now on, even once the type is back.
      json(yield* patchType(tenant.apiKey, "user.signed_up", { archived: false }), 200)
      const refusedAgain = yield* publish(tenant.apiKey, "user.signed_up", { a: 4 }, "arch-1")
      assert.strictEqual(refusedAgain.status, 422)
      assert.isTrue(isReplay(refusedAgain))
      json(yield* publish(tenant.apiKey, "user.signed_up", { a: 4 }, "arch-2"), 202)

      // Strict mode off again: unknown types are accepted.
      yield* setStrict(tenant.tenantId, false)
      json(yield* publish(tenant.apiKey, "user.unknown", { a: 1 }), 202)
    })
  )

  it.effect(
    "a tenant without types skips the catalog; its first type, last removal and strict mode apply at once",
    () =>
      Effect.gen(function* () {
        const tenant = yield* createTenant("Catalog newcomer")
        // Warm the key cache: it says the tenant has no catalog, so publishing asks none.
        json(yield* publish(tenant.apiKey, "order.created", { orderId: 1 }), 202)
        json(yield* createType(tenant.apiKey, { name: "order.created", schema: orderSchema }), 201)
        // `amount` missing (the schema's `required`), `orderId` not a string (its `properties`).
        assert.deepStrictEqual(violations(yield* publish(tenant.apiKey, "order.created", { orderId: 1 })), [
          "/data/amount",
          "/data/orderId"
        ])
        const removed = yield* request("/v1/event-types/order.created", { method: "DELETE", bearer: tenant.apiKey })
        assert.strictEqual(removed.status, 204, removed.text)
        json(yield* publish(tenant.apiKey, "order.created", { orderId: 1 }), 202)
        yield* setStrict(tenant.tenantId, true)
        assert.deepStrictEqual(violations(yield* publish(tenant.apiKey, "order.created", { orderId: 1 })), ["/type"])
        yield* setStrict(tenant.tenantId, false)
        json(yield* publish(tenant.apiKey, "order.created", { orderId: 1 }), 202)
      })
  )

  it.effect("strict mode: an endpoint's eventTypes must name catalog types or prefixes matching one", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Catalog subscriptions")
      json(yield* createType(tenant.apiKey, { name: "invoice.paid" }), 201)
      json(yield* createType(tenant.apiKey, { name: "invoice.old", archived: true }), 201)
      const endpoint = (eventTypes: ReadonlyArray<string>) =>
        request("/v1/endpoints", { bearer: tenant.apiKey, json: { url: "http://127.0.0.1:9999/hook", eventTypes } })
      // Not strict: anything goes.
      const loose = json(yield* endpoint(["whatever.*"]), 201) as { id: string }
      yield* setStrict(tenant.tenantId, true)
      json(yield* endpoint(["invoice.paid", "invoice.*", "codex.*", "codex.endpoint.disabled"]), 201)
      json(yield* endpoint([]), 201)
      const unknown = yield* endpoint(["invoice.paid", "refund.*"])
      assert.deepStrictEqual(violations(unknown), ["/eventTypes/1"])
      assert.include(expectProblem(unknown, 422).detail, "refund.*")
      assert.deepStrictEqual(violations(yield* endpoint(["invoice.old"])), ["/eventTypes/0"], "archived: not there")
      assert.deepStrictEqual(violations(yield* endpoint(["invoice"])), ["/eventTypes/0"])
      const patch = (eventTypes: ReadonlyArray<string>) =>
        request(`/v1/endpoints/${loose.id}`, { method: "PATCH", bearer: tenant.apiKey, json: { eventTypes } })
      assert.deepStrictEqual(violations(yield* patch(["whatever.*"])), ["/eventTypes/0"])
      json(yield* patch(["invoice.*"]), 200)
      // A PATCH that leaves eventTypes alone is not checked.
      json(
        yield* request(`/v1/endpoints/${loose.id}`, {
          method: "PATCH",
          bearer: tenant.apiKey,
          json: { description: "kept" }
        }),
        200
      )
    })
  )
})
