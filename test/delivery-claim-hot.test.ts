import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { makeDeliveryQueue } from "../layers/DeliveryQueue.ts"
import { insertTenantWithEndpoints } from "./support/backlog.ts"
import { TestSqlLive } from "./support/testDatabase.ts"

/**
 * A claim's lease (`locked_until`, `locked_by`, `updated_at`) is a heap-only update: no indexed column changes, and
 * the page keeps room for the new row versions (migration 0015, fillfactor 50). Without room, each claimed row wrote a
 * new entry into every index of `deliveries` (18 buffers per row against 2): most of the store's CPU in the worker
 * benchmark went to the claim's UPDATE. Counted by this transaction's own statistics (`pg_stat_xact_user_tables`), on
 * a table filled as publishing fills it: each event's deliveries to 100 endpoints written together.
 */

const workerId = "wkr_claimhot"

layer(TestSqlLive, { excludeTestServices: true })("a claim's lease", (it) => {
  it.effect(
    "64 deliveries claimed across 100 endpoints are heap-only updates, nearly all",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
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

        const queue = makeDeliveryQueue(sql, { workerId, leaseSeconds: 60 })
        const updates = yield* Effect.gen(function* () {
          const claimed = yield* queue.claim({
            limit: 64,
            busyEndpoints: new Map(),
            busyTenants: new Map(),
            endpointConcurrency: 4,
            tenantConcurrency: 64
          })
          assert.strictEqual(claimed.length, 64)
          const [counts] = yield* sql<{ readonly updated: number; readonly hot: number }>`
            SELECT n_tup_upd::int AS updated, n_tup_hot_upd::int AS hot
            FROM pg_stat_xact_user_tables WHERE relname = 'deliveries'`
          return counts
        }).pipe(sql.withTransaction)

        // A lease makes its row a little wider (a worker id, a time), so the last row or two of a full page may not
        // fit; at fillfactor 90, 9 of the 64 did.
        assert.strictEqual(updates?.updated, 64)
        assert.isAtLeast(updates?.hot ?? 0, 56, "at least 7 in 8 leases written in place, no index touched")
      }),
    { timeout: 60_000 }
  )
})
