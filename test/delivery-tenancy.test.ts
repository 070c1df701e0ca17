import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { ulid } from "../src/domain/Ids.ts"
import { deliveryOf, fastWorker, publish, settled, tenantWithEndpoint } from "./support/deliveryApi.ts"
import { createTenant, type RequestOptions, request } from "./support/http.ts"
import { expectProblem } from "./support/problems.ts"
import { answer, makeReceiver } from "./support/receiver.ts"
import { testServer } from "./support/testServer.ts"

/**
 * Tenant isolation of every delivery route: another tenant naming A's delivery, event or endpoint gets exactly the
 * answer it gets for an id that does not exist (the same 404 problem, byte for byte), so nothing tells it the id is
 * taken, and nothing happens to A's deliveries. The real server with its worker, a real receiver, the real database.
 */

/** A well-formed id that names nothing. */
const unknownId = (prefix: "dlv" | "evt" | "ep") => `${prefix}_${ulid(Date.now())}`

const since = { since: "2000-01-01T00:00:00Z" }

layer(testServer({ config: { delivery: fastWorker({ maxAttempts: 2 }) } }), { excludeTestServices: true })(
  "delivery routes across tenants",
  (it) => {
    it.effect("tenant B reading or acting on A's deliveries gets the 404 of an unknown id; A's are untouched", () =>
      Effect.gen(function* () {
        const receiver = yield* makeReceiver((_, __, res) => answer(res, 500))
        const a = yield* tenantWithEndpoint(receiver.url)
        const event = yield* publish(a.api)
        const failed = yield* settled(a.api, event.event.id)
        assert.deepStrictEqual([failed.status, failed.attemptCount], ["failed", 2])
        const b = yield* createTenant("Tenancy neighbour")

        const routes: ReadonlyArray<{
          readonly name: string
          readonly prefix: "dlv" | "evt" | "ep"
          readonly ownId: string
          readonly path: (id: string) => string
          readonly options: RequestOptions
        }> = [
          { name: "get", prefix: "dlv", ownId: failed.id, path: (id) => `/v1/deliveries/${id}`, options: {} },
          {
            name: "listForEvent",
            prefix: "evt",
            ownId: event.event.id,
            path: (id) => `/v1/events/${id}/deliveries`,
            options: {}
          },
          {
            name: "listForEndpoint",
            prefix: "ep",
            ownId: a.endpointId,
            path: (id) => `/v1/endpoints/${id}/deliveries`,
            options: {}
          },
          {
            name: "stats",
            prefix: "ep",
            ownId: a.endpointId,
            path: (id) => `/v1/endpoints/${id}/stats`,
            options: {}
          },
          {
            name: "retry",
            prefix: "dlv",
            ownId: failed.id,
            path: (id) => `/v1/deliveries/${id}/retry`,
            options: { method: "POST" }
          },
          {
            name: "recover",
            prefix: "ep",
            ownId: a.endpointId,
            path: (id) => `/v1/endpoints/${id}/recover`,
            options: { json: since }
          }
        ]
        for (const route of routes) {
          const foreign = yield* request(route.path(route.ownId), { ...route.options, bearer: b.apiKey })
          const unknown = yield* request(route.path(unknownId(route.prefix)), { ...route.options, bearer: b.apiKey })
          expectProblem(foreign, 404)
          expectProblem(unknown, 404)
          assert.strictEqual(foreign.text, unknown.text, `${route.name}: the same body as for an unknown id`)
          assert.strictEqual(foreign.headers.get("content-type"), unknown.headers.get("content-type"), route.name)
        }

        // Nothing B sent touched A's delivery: still failed after its 2 attempts, nothing more sent.
        const after = yield* deliveryOf(a.api, event.event.id)
        assert.deepStrictEqual([after?.status, after?.attemptCount], ["failed", 2])
        assert.strictEqual(receiver.requests.length, 2)
        // ... while every one of those ids is A's, and answers A on those very routes.
        for (const route of routes) {
          const own = yield* request(route.path(route.ownId), { ...route.options, bearer: a.apiKey })
          assert.oneOf(own.status, [200, 202], `${route.name}: ${own.text}`)
        }
      })
    )
  }
)
