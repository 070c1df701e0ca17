import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { makeDeliveryQueue } from "../layers/DeliveryQueue.ts"
import { insertDueBacklog, insertTenantWithEndpoints } from "./support/backlog.ts"
import { TestSqlLive } from "./support/testDatabase.ts"

/**
 * A claim's lease (`locked_until`, `locked_by`, `updated_at`) is a heap-only update: no indexed column changes, and
 * the page keeps room for the new row versions (migration 0015, fillfactor 50). Without room, each claimed row wrote a
 * new entry into every index of `deliveries` (18 buffers per row against 2): most of the store's CPU in the worker
 * benchmark went to the claim's UPDATE. Counted by this transaction's own statistics (`pg_stat_xact_user_tables`), on
 * a table filled as publishing fills it: each event's deliveries to 100 endpoints written together.
 */

const workerId = "wkr_claimhot"

layer(TestSqlLive, { excludeTestServices: true })("what a claim writes", (it) => {
  it.effect(
    "64 deliveries claimed across 100 endpoints are heap-only updates, nearly all",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`TRUNCATE delivery_attempts, deliveries`
        const endpoints = yield* insertTenantWithEndpoints(sql, { name: "Claim HOT", endpoints: 100 })
        const tenantId = endpoints[0]?.tenant_id
        if (tenantId === undefined) return assert.fail("tenant not created")
        // Event by event, as publishes write them, each delivery with its publisher's `traceparent`.
        for (let event = 0; event < 20; event++) {
          yield* sql`
            WITH ev AS (
              INSERT INTO events (id, tenant_id, type, data, occurred_at)
              VALUES ('evt_' || codex_ulid(), ${tenantId}, 'order.created', '{"orderId":"o_1","amount":4200}', now())
              RETURNING id
            )
            INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, next_attempt_at, traceparent)
            SELECT 'dlv_' || codex_ulid(), ${tenantId}, ev.id, ep.endpoint_id, now() - interval '1 minute',
                   '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
            FROM ev CROSS JOIN (SELECT id AS endpoint_id FROM endpoints WHERE tenant_id = ${tenantId} ORDER BY id) ep`
        }
        yield* sql`ANALYZE deliveries`

        const queue = makeDeliveryQueue(sql, { workerId, leaseSeconds: 60, disableAfterSeconds: 5 * 86_400 })
        // Counted as a difference: the view also holds what earlier transactions of the connection left unflushed.
        const counts = sql<{ readonly updated: number; readonly hot: number }>`
          SELECT n_tup_upd::int AS updated, n_tup_hot_upd::int AS hot
          FROM pg_stat_xact_user_tables WHERE relname = 'deliveries'`
        const updates = yield* Effect.gen(function* () {
          const [before] = yield* counts
          const claimed = yield* queue.claim({
            limit: 64,
            busyEndpoints: new Map(),
            busyTenants: new Map(),
            endpointConcurrency: 4,
            tenantConcurrency: 64
          })
          assert.strictEqual(claimed.length, 64)
          const [after] = yield* counts
          if (before === undefined || after === undefined) return assert.fail("no statistics for deliveries")
          return { updated: after.updated - before.updated, hot: after.hot - before.hot }
        }).pipe(sql.withTransaction)

        // A lease makes its row a little wider (a worker id, a time), so the last row or two of a full page may not
        // fit; at fillfactor 90, 9 of the 64 did.
        assert.strictEqual(updates.updated, 64)
        assert.isAtLeast(updates.hot, 56, "at least 7 in 8 leases written in place, no index touched")
      }),
    { timeout: 60_000 }
  )

  it.effect(
    "a claim of 10 across 20 endpoints locks 10 rows, not each endpoint's room",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        // A claim takes from every tenant: this file's database holds this tenant's deliveries only.
        yield* sql`TRUNCATE delivery_attempts, deliveries`
        const endpoints = yield* insertTenantWithEndpoints(sql, { name: "Claim locks", endpoints: 20 })
        const tenantId = endpoints[0]?.tenant_id
        if (tenantId === undefined) return assert.fail("tenant not created")
        yield* insertDueBacklog(sql, { tenantId, events: 4 })

        const queue = makeDeliveryQueue(sql, { workerId, leaseSeconds: 60, disableAfterSeconds: 5 * 86_400 })
        const { claimed, lockedOnly } = yield* Effect.gen(function* () {
          const claimed = yield* queue.claim({
            limit: 10,
            busyEndpoints: new Map(),
            busyTenants: new Map(),
            endpointConcurrency: 4,
            tenantConcurrency: 64
          })
          // Rows this transaction locked without leasing them: their current version names it as `xmax`.
          const [locked] = yield* sql<{ readonly n: number }>`
            SELECT count(*)::int AS n FROM deliveries
            WHERE tenant_id = ${tenantId} AND locked_by IS NULL AND xmax = pg_current_xact_id()::xid`
          return { claimed: claimed.length, lockedOnly: locked?.n ?? -1 }
        }).pipe(sql.withTransaction)

        assert.strictEqual(claimed, 10, "one delivery from each of 10 endpoints")
        // Each chosen endpoint's share of the 10 is 1: before, each locked its whole room (4), 30 of them for nothing.
        assert.strictEqual(lockedOnly, 0, "no row locked only to be dropped")
      }),
    { timeout: 60_000 }
  )
})
