import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { ulid } from "../src/domain/Ids.ts"
import { apiClient, createTenant, request } from "./support/http.ts"
import { expectProblem } from "./support/problems.ts"
import { explainAnalyze, pagesOf } from "./support/queryPlan.ts"
import { testServerWithSql } from "./support/sharedDatabase.ts"

/**
 * Tenant-wide search (issue 19): `GET /v1/deliveries?status=&endpointId=&eventType=&since=&until=` and
 * `GET /v1/events?type=&since=&until=`, newest first, cursor-paginated, tenant-scoped, each filter served by an index.
 * The real server (its worker off: deliveries stay as the test sets them) on the real database.
 */

const hourMs = 3_600_000

/** Moves a delivery back in time: its creation time and, as a real one would have, an id of then. */
const backdate = (sql: SqlClient.SqlClient, deliveryId: string, agoMs: number) =>
  Effect.gen(function* () {
    const at = new Date(Date.now() - agoMs)
    const newDelivery = `dlv_${ulid(at.getTime())}`
    yield* sql`UPDATE deliveries SET id = ${newDelivery}, created_at = ${at} WHERE id = ${deliveryId}`
    return { deliveryId: newDelivery, at }
  })

layer(testServerWithSql(), { excludeTestServices: true })("searching deliveries and events", (it) => {
  it.effect("every filter, their combinations, newest first, pages, the time window, the tenant's own only", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const tenant = yield* createTenant("Search")
      const api = yield* apiClient(tenant.apiKey)
      const all = yield* api.endpoints.create({ payload: { url: "http://127.0.0.1:1029/all" } })
      const orders = yield* api.endpoints.create({
        payload: { url: "http://127.0.0.1:1029/orders", eventTypes: ["order.*"] }
      })
      const published = []
      for (const type of ["order.created", "invoice.paid", "order.created", "invoice.paid", "order.shipped"]) {
        published.push(yield* api.events.publish({ payload: { type, data: {} } }))
      }
      // 5 deliveries to `all`, 3 to `orders`.
      const search = (query: Record<string, string>) =>
        api.deliveries.search({ query }).pipe(Effect.map((page) => page.data.map((d) => d.id)))
      const everything = yield* search({})
      assert.strictEqual(everything.length, 8)
      assert.deepStrictEqual(everything, [...everything].sort().reverse(), "newest first")

      // Statuses, as a worker would have left them.
      const toAll = (yield* api.deliveries.search({ query: { endpointId: all.id } })).data
      const [failedOne, failedTwo, cancelled] = toAll
      if (failedOne === undefined || failedTwo === undefined || cancelled === undefined) return assert.fail("no data")
      yield* sql`UPDATE deliveries SET status = 'failed' WHERE id IN (${failedOne.id}, ${failedTwo.id})`
      yield* sql`UPDATE deliveries SET status = 'cancelled' WHERE id = ${cancelled.id}`
      yield* sql`UPDATE deliveries SET status = 'succeeded' WHERE endpoint_id = ${orders.id}`

      assert.deepStrictEqual(yield* search({ status: "failed" }), [failedOne.id, failedTwo.id])
      assert.deepStrictEqual(yield* search({ status: "cancelled" }), [cancelled.id])
      assert.strictEqual((yield* search({ status: "succeeded" })).length, 3)
      assert.strictEqual((yield* search({ status: "pending" })).length, 2)
      assert.strictEqual((yield* search({ endpointId: orders.id })).length, 3)
      const invoices = yield* api.deliveries.search({ query: { eventType: "invoice.paid" } })
      assert.deepStrictEqual(
        invoices.data.map((d) => d.endpointId),
        [all.id, all.id]
      )
      assert.deepStrictEqual(
        yield* search({ eventType: "order.created", endpointId: orders.id, status: "succeeded" }),
        [...(yield* search({ endpointId: orders.id, eventType: "order.created" }))]
      )
      assert.strictEqual((yield* search({ eventType: "order.created", endpointId: orders.id })).length, 2)
      assert.deepStrictEqual(yield* search({ eventType: "nothing.here" }), [])

      // Pages: 3 + 3 + 2, each newest first, the cursor carrying on.
      const pages: Array<ReadonlyArray<string>> = []
      let cursor: string | null = null
      do {
        const query: Record<string, string | number> = cursor === null ? { limit: 3 } : { limit: 3, cursor }
        const page: { readonly data: ReadonlyArray<{ readonly id: string }>; readonly nextCursor: string | null } =
          yield* api.deliveries.search({ query })
        pages.push(page.data.map((d) => d.id))
        cursor = page.nextCursor
      } while (cursor !== null)
      assert.deepStrictEqual(
        pages.map((p) => p.length),
        [3, 3, 2]
      )
      assert.deepStrictEqual(pages.flat(), everything)

      // The time window: one delivery (and its event) two hours old.
      const first = published[0]
      const old = toAll.at(-1)
      if (first === undefined || old === undefined) return assert.fail("no data")
      assert.strictEqual(old.eventId, first.event.id)
      const moved = yield* backdate(sql, old.id, 2 * hourMs)
      const hourAgo = new Date(Date.now() - hourMs).toISOString()
      const recent = yield* search({ since: hourAgo })
      assert.strictEqual(recent.length, 7)
      assert.notInclude(recent, moved.deliveryId)
      assert.deepStrictEqual(yield* search({ until: hourAgo }), [moved.deliveryId])
      const earlier = new Date(Date.now() - 3 * hourMs).toISOString()
      assert.deepStrictEqual(yield* search({ since: earlier, until: hourAgo, endpointId: all.id }), [moved.deliveryId])
      // Events, the same window: one received two hours ago (its id of then, as a real one would have).
      const oldEvent = `evt_${ulid(Date.now() - 2 * hourMs)}`
      yield* sql`
        INSERT INTO events (id, tenant_id, type, data, occurred_at, created_at)
        VALUES (${oldEvent}, ${tenant.tenantId}, 'order.created', '{}', now() - interval '2 hours',
                now() - interval '2 hours')`
      const events = yield* api.events.list({ query: { until: hourAgo } })
      assert.deepStrictEqual(
        events.data.map((e) => e.id),
        [oldEvent]
      )
      assert.strictEqual((yield* api.events.list({ query: { since: hourAgo } })).data.length, 5)
      assert.strictEqual((yield* api.events.list({ query: { since: hourAgo, type: "order.*" } })).data.length, 3)

      // A window that is not one, a status that is not one: 400 problems.
      const bad = [
        `/v1/deliveries?since=${encodeURIComponent(hourAgo)}&until=${encodeURIComponent(earlier)}`,
        "/v1/deliveries?status=lost",
        "/v1/deliveries?since=yesterday",
        `/v1/events?since=${encodeURIComponent(hourAgo)}&until=${encodeURIComponent(hourAgo)}`
      ]
      for (const path of bad) expectProblem(yield* request(path, { bearer: tenant.apiKey }), 400)

      // Another tenant finds none of it, whatever it asks; this tenant's cursor is not its own.
      const other = yield* createTenant("Search, elsewhere")
      const otherApi = yield* apiClient(other.apiKey)
      assert.deepStrictEqual((yield* otherApi.deliveries.search({ query: {} })).data, [])
      assert.deepStrictEqual((yield* otherApi.deliveries.search({ query: { endpointId: all.id } })).data, [])
      const page = yield* api.deliveries.search({ query: { limit: 1 } })
      expectProblem(yield* request(`/v1/deliveries?cursor=${page.nextCursor ?? ""}`, { bearer: other.apiKey }), 400)
    })
  )

  it.effect("each filter reads an index: a few pages for 3 failed deliveries among 20,000", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const tenant = yield* createTenant("Search at scale")
      const api = yield* apiClient(tenant.apiKey)
      const endpoint = yield* api.endpoints.create({ payload: { url: "http://127.0.0.1:1029/big" } })
      yield* sql`
        WITH ev AS (
          INSERT INTO events (id, tenant_id, type, data, occurred_at)
          SELECT 'evt_' || codex_ulid(), ${tenant.tenantId}, CASE WHEN n % 5000 = 0 THEN 'rare.kind' ELSE 'bulk.kind' END,
                 '{}', now()
          FROM generate_series(1, 20000) n
          RETURNING id, type
        )
        INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, status)
        SELECT 'dlv_' || codex_ulid(), ${tenant.tenantId}, ev.id, ${endpoint.id}, 'succeeded' FROM ev`
      yield* sql`
        UPDATE deliveries SET status = 'failed'
        WHERE id IN (SELECT id FROM deliveries WHERE tenant_id = ${tenant.tenantId} ORDER BY id LIMIT 3)`
      yield* sql`ANALYZE deliveries`
      yield* sql`ANALYZE events`

      const failed = yield* api.deliveries.search({ query: { status: "failed" } })
      assert.strictEqual(failed.data.length, 3)
      const rare = yield* api.deliveries.search({ query: { eventType: "rare.kind" } })
      assert.strictEqual(rare.data.length, 4)

      // The statements the search runs, measured: pages touched.
      const plan = (where: string) =>
        explainAnalyze(
          sql,
          sql.unsafe(
            `SELECT d.id FROM deliveries d WHERE d.tenant_id = '${tenant.tenantId}' ${where} ORDER BY d.id DESC LIMIT 51`
          )
        )
      const byStatus = yield* plan("AND d.status = 'failed'")
      assert.isBelow(pagesOf(byStatus), 40, JSON.stringify(byStatus))
      const newest = yield* plan("")
      assert.isBelow(pagesOf(newest), 40, JSON.stringify(newest))
      const byType = yield* plan(
        `AND d.event_id IN (SELECT ev.id FROM events ev WHERE ev.tenant_id = '${tenant.tenantId}' AND ev.type = 'rare.kind')`
      )
      assert.isBelow(pagesOf(byType), 60, JSON.stringify(byType))
    })
  )
})
