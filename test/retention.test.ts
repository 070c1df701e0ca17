import { assert, layer } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { SqlClient } from "effect/sql"
import { makeRetentionPurge } from "../layers/RetentionPurgeLive.ts"
import { ulid } from "../src/domain/Ids.ts"
import { apiClient, createTenant, request } from "./support/http.ts"
import { isDefined, poll } from "./support/poll.ts"
import { expectProblem } from "./support/problems.ts"
import { testServerWithSql } from "./support/sharedDatabase.ts"
import { TestServer } from "./support/testServer.ts"

/**
 * Retention (issue 21): what is past RETENTION (or the tenant's own) is absent from every read at once, and the purge
 * then removes exactly that: events with no pending delivery, their deliveries and attempts. An event with a pending
 * delivery stays, and shows, until the delivery ends. The real server (its worker off: deliveries stay as the test
 * leaves them) on the real database; old rows are written as a server of that day would have (ids of then).
 */

const dayMs = 86_400_000

interface OldDelivery {
  readonly status: "pending" | "succeeded" | "failed" | "cancelled"
  readonly attempts?: number
}

/** An event of `agoMs` ago with one delivery per entry to `endpointId`, ids and times of then, in one transaction. */
const insertEventAt = (
  sql: SqlClient.SqlClient,
  target: { readonly tenantId: string; readonly endpointId: string },
  agoMs: number,
  deliveries: ReadonlyArray<OldDelivery>,
  /** Adds the deliveries to this event instead of a new one. */
  existing?: string
) =>
  Effect.gen(function* () {
    const at = new Date(Date.now() - agoMs)
    const eventId = existing ?? `evt_${ulid(at.getTime())}`
    if (existing === undefined) {
      yield* sql`
        INSERT INTO events (id, tenant_id, type, data, occurred_at, created_at)
        VALUES (${eventId}, ${target.tenantId}, 'order.created', '{"n":1}', ${at}, ${at})`
    }
    const deliveryIds: Array<string> = []
    for (const delivery of deliveries) {
      const id = `dlv_${ulid(at.getTime())}`
      deliveryIds.push(id)
      yield* sql`
        INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, status, attempt_count, next_attempt_at,
                                created_at, updated_at)
        VALUES (${id}, ${target.tenantId}, ${eventId}, ${target.endpointId}, ${delivery.status},
                ${delivery.attempts ?? 0}, ${delivery.status === "pending" ? new Date(Date.now() + dayMs) : at},
                ${at}, ${at})`
      for (let attempt = 1; attempt <= (delivery.attempts ?? 0); attempt++) {
        yield* sql`
          INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, outcome, status_code,
                                         response_excerpt)
          VALUES (${id}, ${attempt}, ${at}, 12, 'failed', 500, 'receiver said no')`
      }
    }
    return { eventId, deliveryIds }
    // One transaction: the server's own purge (every 200 ms in one test here) must not see the event before its
    // deliveries, or it removes it in between.
  }).pipe(sql.withTransaction)

const countRows = (sql: SqlClient.SqlClient, tenantId: string) =>
  sql<{ readonly events: number; readonly deliveries: number; readonly attempts: number }>`
    SELECT (SELECT count(*)::int FROM events WHERE tenant_id = ${tenantId} AND type = 'order.created') AS events,
           (SELECT count(*)::int FROM deliveries d JOIN events ev ON ev.id = d.event_id
            WHERE d.tenant_id = ${tenantId} AND ev.type = 'order.created') AS deliveries,
           (SELECT count(*)::int FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
            WHERE d.tenant_id = ${tenantId}) AS attempts`.pipe(Effect.map(([row]) => row ?? assert.fail("no row")))

/** One purge pass, as the server's background fiber runs it, with the server's default RETENTION (30 days). */
const purgeOnce = Effect.gen(function* () {
  const purge = yield* makeRetentionPurge(Duration.days(30), { batchSize: 2, restRatio: 1 })
  return yield* purge.purge
})

layer(testServerWithSql(), { excludeTestServices: true })("retention", (it) => {
  it.effect(
    "reads hide what is past retention at once; the purge removes exactly that and nothing pending; reads unchanged",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const tenant = yield* createTenant("Retention, default")
        const short = yield* createTenant("Retention, one hour")
        const admin = yield* apiClient()
        const updated = yield* admin.admin.updateTenant({
          params: { id: short.tenantId },
          payload: { retentionSeconds: 3600 }
        })
        assert.strictEqual(updated.retentionSeconds, 3600)
        const api = yield* apiClient(tenant.apiKey)
        const shortApi = yield* apiClient(short.apiKey)
        const endpoint = yield* api.endpoints.create({ payload: { url: "http://127.0.0.1:1029/kept" } })
        const other = yield* api.endpoints.create({ payload: { url: "http://127.0.0.1:1029/other" } })
        const shortEndpoint = yield* shortApi.endpoints.create({ payload: { url: "http://127.0.0.1:1029/short" } })
        const target = { tenantId: tenant.tenantId, endpointId: endpoint.id }
        const shortTarget = { tenantId: short.tenantId, endpointId: shortEndpoint.id }

        const oldSucceeded = yield* insertEventAt(sql, target, 31 * dayMs, [{ status: "succeeded", attempts: 2 }])
        const oldFailed = yield* insertEventAt(sql, target, 30 * dayMs + 60_000, [{ status: "failed", attempts: 5 }])
        // Past retention, but one delivery still pending: kept, with that delivery, until it ends.
        const oldPending = yield* insertEventAt(sql, target, 40 * dayMs, [{ status: "pending", attempts: 1 }])
        const [sibling] = (yield* insertEventAt(
          sql,
          { ...target, endpointId: other.id },
          40 * dayMs,
          [{ status: "succeeded", attempts: 1 }],
          oldPending.eventId
        )).deliveryIds
        const young = yield* insertEventAt(sql, target, 29 * dayMs, [{ status: "failed", attempts: 1 }])
        const fresh = yield* insertEventAt(sql, target, 0, [{ status: "succeeded", attempts: 1 }])
        const shortOld = yield* insertEventAt(sql, shortTarget, 2 * 3_600_000, [{ status: "succeeded", attempts: 1 }])
        const shortYoung = yield* insertEventAt(sql, shortTarget, 30 * 60_000, [{ status: "cancelled" }])

        const eventIds = (client: typeof api) =>
          client.events.list({ query: {} }).pipe(Effect.map((page) => page.data.map((e) => e.id)))
        const deliveryIds = (client: typeof api) =>
          client.deliveries.search({ query: {} }).pipe(Effect.map((page) => page.data.map((d) => d.id)))
        const reads = Effect.gen(function* () {
          return {
            events: yield* eventIds(api),
            deliveries: yield* deliveryIds(api),
            shortEvents: yield* eventIds(shortApi),
            shortDeliveries: yield* deliveryIds(shortApi),
            ofPendingEvent: yield* api.deliveries.listForEvent({ params: { id: oldPending.eventId } }).pipe(
              Effect.map((page) => page.data.map((d) => d.id)),
              Effect.catchTag("NotFound", () => Effect.succeed("404"))
            ),
            stats: (yield* api.endpoints.stats({
              params: { id: endpoint.id },
              query: { since: "1970-01-01T00:00:00Z" }
            })).attempts.total
          }
        })

        const before = yield* reads
        assert.deepStrictEqual(before.events, [fresh.eventId, young.eventId, oldPending.eventId])
        assert.deepStrictEqual(before.shortEvents, [shortYoung.eventId])
        assert.deepStrictEqual(
          before.deliveries,
          [fresh.deliveryIds[0], young.deliveryIds[0], oldPending.deliveryIds[0]],
          "the pending delivery shows; its ended sibling, past retention, does not"
        )
        assert.deepStrictEqual(before.ofPendingEvent, oldPending.deliveryIds)
        assert.deepStrictEqual(before.shortDeliveries, [shortYoung.deliveryIds[0]])
        assert.strictEqual(before.stats, 3, "attempts of the fresh, the young and the pending delivery")
        for (const gone of [oldSucceeded, oldFailed]) {
          expectProblem(yield* request(`/v1/events/${gone.eventId}`, { bearer: tenant.apiKey }), 404)
          expectProblem(yield* request(`/v1/deliveries/${gone.deliveryIds[0]}`, { bearer: tenant.apiKey }), 404)
        }
        expectProblem(yield* request(`/v1/deliveries/${sibling}`, { bearer: tenant.apiKey }), 404)
        // A delivery past retention cannot be queued again: nothing may come back to life under the purge.
        expectProblem(
          yield* request(`/v1/deliveries/${oldFailed.deliveryIds[0]}/retry`, { method: "POST", bearer: tenant.apiKey }),
          404
        )
        const recovered = yield* request(`/v1/endpoints/${endpoint.id}/recover`, {
          method: "POST",
          bearer: tenant.apiKey,
          json: { since: new Date(Date.now() - 60 * dayMs).toISOString() }
        })
        assert.strictEqual(recovered.status, 202, recovered.text)
        assert.strictEqual(JSON.parse(recovered.text).queued, 1, "the young failed delivery only")
        yield* sql`UPDATE deliveries SET status = 'failed' WHERE id = ${young.deliveryIds[0] ?? ""}`

        const tenantRowsBefore = yield* countRows(sql, tenant.tenantId)
        const report = yield* purgeOnce
        assert.isAtLeast(report.events, 3, "two of the tenant's, one of the short-lived tenant's (others' too)")
        assert.deepStrictEqual(yield* countRows(sql, tenant.tenantId), {
          events: tenantRowsBefore.events - 2,
          deliveries: tenantRowsBefore.deliveries - 2,
          attempts: tenantRowsBefore.attempts - 7
        })
        const [left] = yield* sql<{ readonly ids: ReadonlyArray<string> }>`
          SELECT coalesce(array_agg(id ORDER BY id), '{}') AS ids FROM events
          WHERE id IN (${oldSucceeded.eventId}, ${oldFailed.eventId}, ${oldPending.eventId}, ${shortOld.eventId})`
        assert.deepStrictEqual(left?.ids, [oldPending.eventId], "the event with a pending delivery is all that stays")
        const [kept] = yield* sql<{ readonly n: number }>`
          SELECT count(*)::int AS n FROM deliveries WHERE event_id = ${oldPending.eventId}`
        assert.strictEqual(kept?.n, 2, "the pending delivery's event keeps its deliveries until it ends")
        assert.deepStrictEqual(yield* reads, before, "the purge changes nothing a read shows")

        // The pending delivery ends: its event is past retention from that moment, and the next pass removes it.
        yield* sql`UPDATE deliveries SET status = 'succeeded' WHERE id = ${oldPending.deliveryIds[0] ?? ""}`
        const after = yield* reads
        assert.deepStrictEqual(after.events, [fresh.eventId, young.eventId])
        assert.deepStrictEqual(after.deliveries, [fresh.deliveryIds[0], young.deliveryIds[0]])
        assert.strictEqual(after.ofPendingEvent, "404")
        yield* purgeOnce
        const [remaining] = yield* sql<{ readonly n: number }>`
          SELECT count(*)::int AS n FROM events WHERE id = ${oldPending.eventId}`
        assert.strictEqual(remaining?.n, 0)
        assert.deepStrictEqual(yield* reads, after)
      }),
    60_000
  )

  it.effect("the admin sets a tenant's retention, returns it to the default, and refuses what is out of range", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Retention settings")
      const admin = yield* apiClient()
      const created = yield* admin.admin.createTenant({
        payload: { name: "Keeps a year", retentionSeconds: 31_536_000 }
      })
      assert.strictEqual(created.tenant.retentionSeconds, 31_536_000)
      assert.strictEqual(tenant.created.tenant.retentionSeconds, null, "null: the server's RETENTION")
      const set = yield* admin.admin.updateTenant({
        params: { id: tenant.tenantId },
        payload: { retentionSeconds: 60 }
      })
      assert.strictEqual(set.retentionSeconds, 60)
      const renamed = yield* admin.admin.updateTenant({ params: { id: tenant.tenantId }, payload: { name: "Renamed" } })
      assert.strictEqual(renamed.retentionSeconds, 60, "absent: unchanged")
      const reset = yield* admin.admin.updateTenant({
        params: { id: tenant.tenantId },
        payload: { retentionSeconds: null }
      })
      assert.strictEqual(reset.retentionSeconds, null)
      for (const bad of [0, -1, 315_360_001, 1.5, "30 days"]) {
        const response = yield* request(`/admin/tenants/${tenant.tenantId}`, {
          method: "PATCH",
          json: { retentionSeconds: bad }
        })
        expectProblem(response, 400)
      }
    })
  )

  it.effect("a keyed publish replayed after its event is past retention: 409, not the event, not a 500", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const tenant = yield* createTenant("Retention, replay")
      const publish = () =>
        request("/v1/events", {
          method: "POST",
          bearer: tenant.apiKey,
          idempotencyKey: "retention-replay",
          json: { type: "order.created", data: { n: 1 } }
        })
      const first = yield* publish()
      assert.strictEqual(first.status, 202, first.text)
      const eventId: string = JSON.parse(first.text).event.id
      assert.strictEqual((yield* publish()).status, 202, "replayed while the event is kept")
      yield* sql`UPDATE events SET created_at = now() - interval '31 days' WHERE id = ${eventId}`
      const replay = yield* publish()
      expectProblem(replay, 409)
      assert.match(JSON.parse(replay.text).detail, /past its retention/)
    })
  )
})

layer(testServerWithSql({ config: { retention: { keep: Duration.days(30), purgeEvery: Duration.millis(200) } } }), {
  excludeTestServices: true
})("the server's own purge", (it) => {
  it.effect(
    "runs every RETENTION_PURGE_INTERVAL: an old event goes without anyone asking, and the pass is logged",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const server = yield* TestServer
        const tenant = yield* createTenant("Retention, the server's loop")
        const api = yield* apiClient(tenant.apiKey)
        const endpoint = yield* api.endpoints.create({ payload: { url: "http://127.0.0.1:1029/loop" } })
        const old = yield* insertEventAt(sql, { tenantId: tenant.tenantId, endpointId: endpoint.id }, 31 * dayMs, [
          { status: "succeeded", attempts: 1 }
        ])
        const kept = yield* insertEventAt(sql, { tenantId: tenant.tenantId, endpointId: endpoint.id }, dayMs, [
          { status: "succeeded", attempts: 1 }
        ])
        yield* poll(
          "the old event removed by the server's purge",
          sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM events WHERE id = ${old.eventId}`.pipe(
            Effect.map(([row]) => row?.n)
          ),
          (n) => n === 0,
          { timeoutMs: 20_000, intervalMs: 100 }
        )
        const [left] = yield* sql<{
          readonly n: number
        }>`SELECT count(*)::int AS n FROM events WHERE id = ${kept.eventId}`
        assert.strictEqual(left?.n, 1, "a younger event stays")
        const line = yield* poll(
          "the purge's log line",
          Effect.sync(() =>
            server.logs
              .map((raw) => JSON.parse(raw) as { readonly message?: string; readonly events?: number })
              .find((entry) => entry.message === "retention: events past retention removed")
          ),
          isDefined,
          { timeoutMs: 5_000, intervalMs: 50 }
        )
        assert.isAtLeast(line.events ?? 0, 1)
      })
  )
})
