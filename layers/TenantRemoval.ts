import { Effect, Schema } from "effect"
import type { SqlClient } from "effect/sql"
import { TenantId } from "../src/domain/Ids.ts"
import { decodeRows } from "./SqlRows.ts"

const tenantIds = decodeRows(Schema.Struct({ id: TenantId }))
const eventBatches = decodeRows(Schema.Struct({ found: Schema.Int, removed: Schema.Int }))
const counts = decodeRows(Schema.Struct({ n: Schema.Int }))

/** Rows other than events removed per statement (idempotency keys, endpoints, API keys). */
const rowBatch = 1_000

/**
 * Removes the rows of the tenants being deleted (DELETE /admin/tenants/{id}), each statement a bounded batch, so that
 * no statement holds many locks or runs long: its events (their deliveries and attempts by the foreign keys'
 * cascades, pending ones included: the tenant's endpoints are disabled, nothing more is sent), counted in
 * `deletion_events_removed`; its idempotency keys (scoped by the tenant id, no foreign key); its endpoints, API
 * keys and portal sessions; the tenant row last, and only once no event of it is left. A pass that stops half-way (a failure, a
 * shutdown) leaves a tenant still `deleting`, and the next one goes on. Returns the number of tenants removed.
 */
export const removeDeletedTenants = (
  sql: SqlClient.SqlClient,
  eventBatch: number,
  /** Runs each statement that removes events (the purge rests after it). */
  paced: <A, E, R>(statement: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
) =>
  Effect.gen(function* () {
    const deleting = yield* tenantIds(sql`SELECT id FROM tenants WHERE deleted_at IS NOT NULL ORDER BY deleted_at`)
    let removed = 0
    for (const { id } of deleting) {
      for (;;) {
        const [batch] = yield* paced(
          eventBatches(sql`
          WITH doomed AS (
            SELECT ev.id FROM events ev WHERE ev.tenant_id = ${id} ORDER BY ev.id LIMIT ${eventBatch}
            FOR UPDATE SKIP LOCKED
          ), gone AS (
            DELETE FROM events ev WHERE ev.id = ANY (ARRAY(SELECT id FROM doomed)) RETURNING ev.id
          ), counted AS (
            -- Runs although nothing reads it (a data-modifying WITH always does).
            UPDATE tenants SET deletion_events_removed = deletion_events_removed + (SELECT count(*) FROM gone)
            WHERE id = ${id}
          )
          SELECT (SELECT count(*)::int FROM doomed) AS found, (SELECT count(*)::int FROM gone) AS removed`)
        )
        if (batch === undefined || batch.found < eventBatch) break
      }
      for (const table of [
        sql`DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY(
              SELECT ctid FROM idempotency_keys WHERE scope = ${id} LIMIT ${rowBatch}))`,
        sql`DELETE FROM endpoints WHERE id = ANY (ARRAY(
              SELECT id FROM endpoints WHERE tenant_id = ${id} LIMIT ${rowBatch}))`,
        sql`DELETE FROM api_keys WHERE id = ANY (ARRAY(
              SELECT id FROM api_keys WHERE tenant_id = ${id} LIMIT ${rowBatch}))`,
        sql`DELETE FROM portal_sessions WHERE id = ANY (ARRAY(
              SELECT id FROM portal_sessions WHERE tenant_id = ${id} LIMIT ${rowBatch}))`
      ]) {
        for (;;) {
          const [row] = yield* counts(sql`WITH gone AS (${table} RETURNING 1) SELECT count(*)::int AS n FROM gone`)
          if (row === undefined || row.n < rowBatch) break
        }
      }
      // Whatever a send in flight added meanwhile (an operational event) goes with the row, by its cascades.
      const [gone] = yield* counts(sql`
        WITH gone AS (
          DELETE FROM tenants WHERE id = ${id} AND deleted_at IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM events WHERE tenant_id = ${id} LIMIT 1)
          RETURNING id
        )
        SELECT count(*)::int AS n FROM gone`)
      if ((gone?.n ?? 0) > 0) {
        removed++
        yield* Effect.logInfo("tenant deletion: every row of the tenant removed").pipe(
          Effect.annotateLogs({ tenantId: id })
        )
      }
    }
    return removed
  })
