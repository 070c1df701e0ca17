import { Effect, Layer, Option, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { AppConfig } from "../services/AppConfig.ts"
import { EndpointCircuits } from "../services/EndpointCircuits.ts"
import { EndpointStats } from "../services/EndpointStats.ts"
import { EndpointId } from "../src/domain/Ids.ts"
import { retainedRows } from "./RetentionSql.ts"
import { sqlFailuresAsDefects } from "./SqlFailures.ts"
import { decodeRows, iso, isoOrNull } from "./SqlRows.ts"

/** The one row of the stats statement: the endpoint's, present only when it is the tenant's and not deleted. */
const StatsRow = Schema.Struct({
  endpoint_id: EndpointId,
  total: Schema.Int,
  succeeded: Schema.Int,
  failed: Schema.Int,
  gone: Schema.Int,
  timeout: Schema.Int,
  network_error: Schema.Int,
  blocked: Schema.Int,
  p50: Schema.NullOr(Schema.Number),
  p99: Schema.NullOr(Schema.Number),
  last_success_at: Schema.NullOr(Schema.Date),
  last_failure_at: Schema.NullOr(Schema.Date)
})

const statsRows = decodeRows(StatsRow)

/**
 * Endpoint stats in one statement over the endpoint's attempts: the endpoint's row (tenant, not deleted), its
 * deliveries by `deliveries_endpoint_id_idx`, their attempts by `delivery_attempts_delivery_idx`. The window's
 * counts and percentiles are aggregates FILTERed to the window; the latest success and failure are over every attempt
 * of the endpoint, so the statement reads all of them (see README, "Endpoint stats", for what that costs). The
 * circuit is read afterwards from the circuits' store, outside any transaction (none is opened here).
 */
export const EndpointStatsLive: Layer.Layer<EndpointStats, never, SqlClient.SqlClient | EndpointCircuits | AppConfig> =
  Layer.effect(
    EndpointStats,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      // Attempts past retention count nowhere, as after the purge (RetentionSql).
      const retained = retainedRows(sql, (yield* AppConfig).retention.keep)
      const circuits = yield* EndpointCircuits

      return EndpointStats.of({
        read: Effect.fn("EndpointStats.read")(function* (tenantId, id, window) {
          const inWindow = sql`a.started_at >= ${window.since} AND a.started_at <= ${window.until}`
          const outcome = (name: string) =>
            sql`count(*) FILTER (WHERE ${inWindow} AND a.outcome = ${name})::int AS ${sql(name)}`
          const percentile = (fraction: number, name: string) =>
            sql`percentile_cont(${fraction}::float8) WITHIN GROUP (ORDER BY a.duration_ms) FILTER (WHERE ${inWindow})
                AS ${sql(name)}`
          const [row] = yield* statsRows(sql`
            SELECT e.id AS endpoint_id,
                   count(a.id) FILTER (WHERE ${inWindow})::int AS total,
                   ${outcome("succeeded")}, ${outcome("failed")}, ${outcome("gone")}, ${outcome("timeout")},
                   ${outcome("network_error")}, ${outcome("blocked")},
                   ${percentile(0.5, "p50")}, ${percentile(0.99, "p99")},
                   max(a.started_at) FILTER (WHERE a.outcome = 'succeeded') AS last_success_at,
                   max(a.started_at) FILTER (WHERE a.outcome <> 'succeeded') AS last_failure_at
            FROM endpoints e
            LEFT JOIN deliveries d ON d.endpoint_id = e.id AND d.tenant_id = ${tenantId}
              AND ${retained.delivery(tenantId, "d")}
            LEFT JOIN delivery_attempts a ON a.delivery_id = d.id
            WHERE e.tenant_id = ${tenantId} AND e.id = ${id} AND e.deleted_at IS NULL
            GROUP BY e.id`)
          if (row === undefined) return Option.none()
          const health = yield* circuits.health(row.endpoint_id)
          return Option.some({
            endpointId: row.endpoint_id,
            since: iso(window.since),
            until: iso(window.until),
            attempts: {
              total: row.total,
              succeeded: row.succeeded,
              failed: row.failed,
              gone: row.gone,
              timeout: row.timeout,
              network_error: row.network_error,
              blocked: row.blocked
            },
            successRate: row.total === 0 ? null : row.succeeded / row.total,
            durationMs: { p50: row.p50, p99: row.p99 },
            lastSuccessAt: isoOrNull(row.last_success_at),
            lastFailureAt: isoOrNull(row.last_failure_at),
            health: { circuit: health.circuit, openUntil: isoOrNull(health.openUntil) }
          })
        }, sqlFailuresAsDefects)
      })
    })
  )
