import { assert, layer } from "@effect/vitest"
import { Duration, Effect, Option } from "effect"
import { SqlClient } from "effect/sql"
import type { ClaimedRow } from "../layers/DeliveryClaim.ts"
import { type Completion, makeDeliveryQueue } from "../layers/DeliveryQueue.ts"
import type { JsonText } from "../src/domain/JsonText.ts"
import { insertEndpointBacklog, insertTenantWithEndpoints } from "./support/backlog.ts"
import { TestSqlLive } from "./support/testDatabase.ts"

/**
 * Recording a batch of finished attempts, and releasing leases, reach their deliveries by primary key, whatever the
 * table holds (issue 17). Joined to the batch's recordset (which the planner takes for 100 rows), the record statement
 * read the whole `deliveries` table three times per batch beside 10,000 rows: two thirds of the store's CPU in the
 * worker benchmark. Counted by the statistics of this very transaction (`pg_stat_xact_user_tables`) on this file's
 * own database, next to a backlog of 10,000 deliveries.
 */

const workerId = "wkr_recordcost"

interface TableScans {
  readonly seq_scan: number
  readonly seq_tup_read: number
}

const deliveriesScans = (sql: SqlClient.SqlClient) =>
  Effect.map(
    sql<TableScans>`
      SELECT seq_scan::int, seq_tup_read::int FROM pg_stat_xact_user_tables WHERE relname = 'deliveries'`,
    (rows) => rows[0] ?? { seq_scan: 0, seq_tup_read: 0 }
  )

const claimedRow = (row: { readonly id: string; readonly tenant_id: string; readonly endpoint_id: string }) =>
  ({
    id: row.id,
    tenant_id: row.tenant_id,
    event_id: `evt_${row.id.slice(4)}`,
    endpoint_id: row.endpoint_id,
    attempt_count: 0,
    traceparent: null,
    event_type: "backlog.item",
    event_data: "{}" as JsonText,
    event_occurred_at: new Date(),
    event_created_at: new Date(),
    url: "http://127.0.0.1:9/",
    endpoint_deleted: false,
    secret: "s",
    previous_secret: null,
    endpoint_headers: null,
    endpoint_turn_in_ms: null,
    endpoint_failing_since: null
  }) satisfies ClaimedRow

const answered = (row: ClaimedRow, status: number): Completion => ({
  row,
  attempt: 1,
  startedAt: new Date(),
  durationMs: 3,
  result: {
    outcome: status < 300 ? "succeeded" : "failed",
    statusCode: status,
    error: null,
    excerpt: null,
    retryAfter: Option.none()
  },
  decision: status < 300 ? { _tag: "Succeeded" } : { _tag: "Retry", delay: Duration.minutes(1) }
})

layer(TestSqlLive, { excludeTestServices: true })("recording attempts beside a long backlog", (it) => {
  it.effect(
    "a batch of 8 records (moved, retried, kept cancelled) and a release read no table sequentially",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const [endpoint] = yield* insertTenantWithEndpoints(sql, { name: "Backlog" })
        if (endpoint === undefined) return assert.fail("endpoint not created")
        yield* insertEndpointBacklog(sql, {
          tenantId: endpoint.tenant_id,
          endpointId: endpoint.endpoint_id,
          rows: 10_000,
          state: "due"
        })
        yield* sql`VACUUM ANALYZE deliveries`
        // This worker holds the 9 oldest: 8 finish (2 of them cancelled while in flight), 1 is released.
        const leased = yield* sql<{ readonly id: string; readonly tenant_id: string; readonly endpoint_id: string }>`
          UPDATE deliveries SET locked_until = now() + interval '1 minute', locked_by = ${workerId}
          WHERE id IN (SELECT id FROM deliveries ORDER BY next_attempt_at LIMIT 9)
          RETURNING id, tenant_id, endpoint_id`
        const rows = leased.map(claimedRow).sort((a, b) => (a.id < b.id ? -1 : 1))
        const [cancelledA, cancelledB, retriedRow, released, ...delivered] = rows
        if (cancelledA === undefined || cancelledB === undefined || retriedRow === undefined || !released) {
          return assert.fail("not enough rows leased")
        }
        yield* sql`UPDATE deliveries SET status = 'cancelled' WHERE id IN (${cancelledA.id}, ${cancelledB.id})`

        const queue = makeDeliveryQueue(sql, { workerId, leaseSeconds: 60, disableAfterSeconds: 5 * 86_400 })
        const batch = [
          answered(cancelledA, 204),
          answered(cancelledB, 204),
          answered(retriedRow, 503),
          ...delivered.map((row) => answered(row, 204))
        ]
        const { states, scans } = yield* Effect.gen(function* () {
          const before = yield* deliveriesScans(sql)
          const states = yield* queue.complete(batch)
          const releasedCount = yield* queue.releaseHeld([released.id, cancelledA.id])
          const after = yield* deliveriesScans(sql)
          assert.strictEqual(releasedCount, 1, "only the lease still held (and pending) is released")
          return {
            states,
            scans: {
              seq_scan: after.seq_scan - before.seq_scan,
              seq_tup_read: after.seq_tup_read - before.seq_tup_read
            }
          }
        }).pipe(sql.withTransaction)

        assert.deepStrictEqual(
          batch.map((completion): string | undefined => states.get(completion.row.id)),
          ["cancelled", "cancelled", "retry scheduled", ...delivered.map(() => "succeeded")]
        )
        assert.deepStrictEqual(scans, { seq_scan: 0, seq_tup_read: 0 }, "deliveries read by primary key only")
        const [counts] = yield* sql<{ readonly attempts: number; readonly succeeded: number; readonly held: number }>`
          SELECT (SELECT count(*)::int FROM delivery_attempts) AS attempts,
                 (SELECT count(*)::int FROM deliveries WHERE status = 'succeeded') AS succeeded,
                 (SELECT count(*)::int FROM deliveries WHERE locked_by = ${workerId}) AS held`
        assert.deepStrictEqual(counts, { attempts: batch.length, succeeded: delivered.length, held: 0 })
      }),
    { timeout: 60_000 }
  )
})
