import { assert, layer } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber } from "effect"
import { SqlClient } from "effect/sql"
import { makeRetentionPurge } from "../layers/RetentionPurgeLive.ts"
import { apiClient, createTenant, request } from "./support/http.ts"
import { expectProblem } from "./support/problems.ts"
import { testServerWithSql } from "./support/sharedDatabase.ts"

/**
 * Deleting a tenant (issue 21): `DELETE /admin/tenants/{id}` stops its keys at once (401) and its deliveries (its
 * endpoints are disabled), shows the removal's progress on `GET /admin/tenants/{id}`, and the purge then removes every
 * row of it, the tenant last (404), leaving other tenants as they were. The real server (worker off) on the real
 * database; the purge pass is the server's own code, run by the test.
 */

/** Every row the tenant owns, table by table. */
const rowsOf = (sql: SqlClient.SqlClient, tenantId: string) =>
  sql<Record<string, number>>`
    SELECT (SELECT count(*)::int FROM tenants WHERE id = ${tenantId}) AS tenants,
           (SELECT count(*)::int FROM events WHERE tenant_id = ${tenantId}) AS events,
           (SELECT count(*)::int FROM deliveries WHERE tenant_id = ${tenantId}) AS deliveries,
           (SELECT count(*)::int FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
            WHERE d.tenant_id = ${tenantId}) AS attempts,
           (SELECT count(*)::int FROM endpoints WHERE tenant_id = ${tenantId}) AS endpoints,
           (SELECT count(*)::int FROM api_keys WHERE tenant_id = ${tenantId}) AS api_keys,
           (SELECT count(*)::int FROM idempotency_keys WHERE scope = ${tenantId}) AS idempotency_keys`.pipe(
    Effect.map(([row]) => row ?? assert.fail("no row"))
  )

/** A tenant with an endpoint, a second key, three keyed events (their deliveries pending) and an attempt each. */
const populatedTenant = (sql: SqlClient.SqlClient, name: string) =>
  Effect.gen(function* () {
    const tenant = yield* createTenant(name)
    const api = yield* apiClient(tenant.apiKey)
    const endpoint = yield* api.endpoints.create({ payload: { url: "http://127.0.0.1:1029/hook" } })
    const second = yield* request("/v1/api-keys", {
      method: "POST",
      bearer: tenant.apiKey,
      json: { name: "second" }
    })
    assert.strictEqual(second.status, 201, second.text)
    for (const n of [1, 2, 3]) {
      const published = yield* request("/v1/events", {
        method: "POST",
        bearer: tenant.apiKey,
        idempotencyKey: `${name}-${n}`,
        json: { type: "order.created", data: { n } }
      })
      assert.strictEqual(published.status, 202, published.text)
    }
    yield* sql`
      INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, outcome, status_code)
      SELECT id, 1, now(), 5, 'failed', 500 FROM deliveries WHERE tenant_id = ${tenant.tenantId}`
    return { ...tenant, endpointId: endpoint.id, secondKey: JSON.parse(second.text).key as string }
  })

const purgePass = Effect.flatMap(makeRetentionPurge(Duration.days(30), { batchSize: 2, restRatio: 1 }), (p) => p.purge)

layer(testServerWithSql(), { excludeTestServices: true })("deleting a tenant", (it) => {
  it.effect(
    "keys 401 at once, endpoints disabled, progress shown, every row removed in batches, other tenants untouched",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const doomed = yield* populatedTenant(sql, "Doomed")
        const bystander = yield* populatedTenant(sql, "Bystander")
        const bystanderRows = yield* rowsOf(sql, bystander.tenantId)
        // Its three events and the `codex.endpoint.created` its endpoint's creation wrote.
        assert.deepStrictEqual(yield* rowsOf(sql, doomed.tenantId), {
          tenants: 1,
          events: 4,
          deliveries: 3,
          attempts: 3,
          endpoints: 1,
          api_keys: 2,
          idempotency_keys: 3
        })

        const deleted = yield* request(`/admin/tenants/${doomed.tenantId}`, { method: "DELETE" })
        assert.strictEqual(deleted.status, 202, deleted.text)
        const detail = JSON.parse(deleted.text)
        assert.strictEqual(detail.status, "deleting")
        assert.deepInclude(detail.deletion, { eventsRemoved: 0, eventsRemaining: 4 })
        const requestedAt: string = detail.deletion.requestedAt

        // At once, with nothing waited for: both keys, on every route, and no other tenant's.
        for (const key of [doomed.apiKey, doomed.secondKey]) {
          expectProblem(yield* request("/v1/endpoints", { bearer: key }), 401)
          expectProblem(
            yield* request("/v1/events", { method: "POST", bearer: key, json: { type: "a.b", data: {} } }),
            401
          )
        }
        assert.strictEqual((yield* request("/v1/endpoints", { bearer: bystander.apiKey })).status, 200)
        // Its deliveries stop: the worker claims nothing for a disabled endpoint.
        const enabled = yield* sql<{ readonly tenant_id: string; readonly enabled: boolean }>`
          SELECT tenant_id, enabled FROM endpoints WHERE id IN (${doomed.endpointId}, ${bystander.endpointId})`
        assert.sameDeepMembers(
          enabled.map((row) => [row.tenant_id, row.enabled]),
          [
            [doomed.tenantId, false],
            [bystander.tenantId, true]
          ]
        )
        // Nothing about it can change any more; asking again answers the same.
        expectProblem(
          yield* request(`/admin/tenants/${doomed.tenantId}`, { method: "PATCH", json: { name: "Back" } }),
          409
        )
        expectProblem(yield* request(`/admin/tenants/${doomed.tenantId}/api-keys`, { method: "POST" }), 409)
        const again = yield* request(`/admin/tenants/${doomed.tenantId}`, { method: "DELETE" })
        assert.strictEqual(again.status, 202)
        assert.strictEqual(JSON.parse(again.text).deletion.requestedAt, requestedAt)
        const listed = (yield* (yield* apiClient()).admin.listTenants({ query: { limit: 100 } })).data
        assert.strictEqual(listed.find((t) => t.id === doomed.tenantId)?.status, "deleting")

        // A pass that cannot take every event (one is held, as a retry holds it) removes the rest and shows progress.
        const [held] = yield* sql<{ readonly id: string }>`
          SELECT id FROM events WHERE tenant_id = ${doomed.tenantId} ORDER BY id LIMIT 1`
        const locked = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const holder = yield* sql
          .withTransaction(
            Effect.gen(function* () {
              yield* sql`SELECT id FROM events WHERE id = ${held?.id ?? ""} FOR KEY SHARE`
              yield* Deferred.succeed(locked, undefined)
              yield* Deferred.await(release)
            })
          )
          .pipe(Effect.forkChild)
        yield* Deferred.await(locked)
        const partial = yield* purgePass
        assert.strictEqual(partial.tenantsRemoved, 0, "the held event keeps the tenant")
        const progress = yield* request(`/admin/tenants/${doomed.tenantId}`)
        assert.strictEqual(progress.status, 200)
        assert.deepInclude(JSON.parse(progress.text).deletion, { eventsRemoved: 3, eventsRemaining: 1, requestedAt })
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(holder)

        const final = yield* purgePass
        assert.isAtLeast(final.tenantsRemoved, 1)
        assert.deepStrictEqual(yield* rowsOf(sql, doomed.tenantId), {
          tenants: 0,
          events: 0,
          deliveries: 0,
          attempts: 0,
          endpoints: 0,
          api_keys: 0,
          idempotency_keys: 0
        })
        expectProblem(yield* request(`/admin/tenants/${doomed.tenantId}`), 404)
        expectProblem(yield* request(`/admin/tenants/${doomed.tenantId}`, { method: "DELETE" }), 404)
        assert.deepStrictEqual(yield* rowsOf(sql, bystander.tenantId), bystanderRows)
        assert.strictEqual((yield* request("/v1/events", { bearer: bystander.apiKey })).status, 200)
      }),
    60_000
  )

  it.effect("unknown and malformed tenant ids: 404, and a body is refused", () =>
    Effect.gen(function* () {
      expectProblem(yield* request("/admin/tenants/ten_0000000000000000000000000Z", { method: "DELETE" }), 404)
      expectProblem(yield* request("/admin/tenants/nope", { method: "DELETE" }), 404)
      const tenant = yield* createTenant("Body")
      const withBody = yield* request(`/admin/tenants/${tenant.tenantId}`, { method: "DELETE", json: { force: true } })
      assert.isAtLeast(withBody.status, 400)
      assert.isBelow(withBody.status, 500)
      assert.strictEqual((yield* request(`/admin/tenants/${tenant.tenantId}`)).status, 200, "not deleted")
    })
  )
})
