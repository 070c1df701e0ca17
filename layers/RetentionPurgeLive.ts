import { Clock, Duration, Effect, Layer, Schedule, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { AppConfig } from "../services/AppConfig.ts"
import { RetentionPurge } from "../services/RetentionPurge.ts"
import { firstIdAt, TenantId } from "../src/domain/Ids.ts"
import { idClockSkewMs } from "../src/domain/Search.ts"
import { hasPendingDelivery } from "./RetentionSql.ts"
import { sqlFailuresAsDefects } from "./SqlFailures.ts"
import { decodeRows } from "./SqlRows.ts"
import { removeDeletedTenants } from "./TenantRemoval.ts"

export interface RetentionPurgeOptions {
  /** Events removed per statement (each with its deliveries and attempts). */
  readonly batchSize: number
  /**
   * After each statement the purge rests this many times as long as the statement took: it uses at most
   * 1 / (1 + restRatio) of one database connection's time, leaving the rest of the database to the traffic.
   */
  readonly restRatio: number
}

export const defaultRetentionPurgeOptions: RetentionPurgeOptions = { batchSize: 250, restRatio: 4 }

const TenantCutoff = Schema.Struct({ id: TenantId, cutoff: Schema.Date })
const tenantCutoffs = decodeRows(TenantCutoff)
const Batch = Schema.Struct({ found: Schema.Int, removed: Schema.Int, last: Schema.NullOr(Schema.String) })
const batches = decodeRows(Batch)

/** Tenants read per statement while walking them. */
const tenantPage = 1_000

/**
 * One statement of the purge: the tenant's next `size` events (by id, after `after`, below `below`) created before
 * `cutoff` with no pending delivery, locked (`SKIP LOCKED`) and removed; how many it found and removed, and the last
 * id. The DELETE takes its rows by id (`= ANY`): joined with the CTE, the planner would hash the whole table.
 */
export const purgeBatch = (
  sql: SqlClient.SqlClient,
  batch: {
    readonly tenantId: TenantId
    readonly after: string
    readonly below: string
    readonly cutoff: Date
    readonly size: number
  }
) => sql`
  WITH doomed AS (
    SELECT ev.id FROM events ev
    WHERE ev.tenant_id = ${batch.tenantId} AND ev.id > ${batch.after} AND ev.id < ${batch.below}
      AND ev.created_at < ${batch.cutoff} AND NOT ${hasPendingDelivery(sql, "ev")}
    ORDER BY ev.id LIMIT ${batch.size}
    FOR UPDATE SKIP LOCKED
  ), gone AS (
    DELETE FROM events ev WHERE ev.id = ANY (ARRAY(SELECT id FROM doomed)) RETURNING ev.id
  )
  SELECT (SELECT count(*)::int FROM doomed) AS found, (SELECT count(*)::int FROM gone) AS removed,
         (SELECT max(id) FROM doomed) AS last`

/** The purge for a server whose RETENTION is `retention` (tenants may have their own). */
export const makeRetentionPurge = (
  retention: Duration.Duration,
  options: RetentionPurgeOptions = defaultRetentionPurgeOptions
) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const defaultSeconds = Duration.toMillis(retention) / 1000
    /** Runs a statement, then rests in proportion to how long it took. */
    const paced = <A, E, R>(statement: Effect.Effect<A, E, R>) =>
      Effect.gen(function* () {
        const started = yield* Clock.currentTimeMillis
        const result = yield* statement
        const took = (yield* Clock.currentTimeMillis) - started
        if (options.restRatio > 0) yield* Effect.sleep(Duration.millis(took * options.restRatio))
        return result
      })

    /**
     * One tenant's events older than `cutoff`, oldest first, `batchSize` at a time: each statement removes a batch of
     * events with no pending delivery; their deliveries and attempts go with them, by the foreign keys' cascades
     * (each an index probe). Events held by a retry or a recover (FOR KEY SHARE) are skipped, not waited for: the
     * next pass gets them. The ids are ULIDs: the walk is an index range bounded by the cutoff's id (widened by the
     * clocks' skew), and `created_at` decides exactly (`purgeBatch`).
     */
    const purgeTenant = (tenantId: TenantId, cutoff: Date) =>
      Effect.gen(function* () {
        const below = firstIdAt("evt", cutoff.getTime() + idClockSkewMs)
        let removed = 0
        let after = ""
        for (;;) {
          const [batch] = yield* paced(
            batches(purgeBatch(sql, { tenantId, after, below, cutoff, size: options.batchSize }))
          )
          if (batch === undefined) return removed
          removed += batch.removed
          if (batch.found < options.batchSize || batch.last === null) return removed
          after = batch.last
        }
      })

    const purge = Effect.gen(function* () {
      const tenantsRemoved = yield* removeDeletedTenants(sql, options.batchSize, paced)
      let events = 0
      let tenants = 0
      let after = ""
      for (;;) {
        // Each tenant's cutoff in the database's time, once per pass: the reads' cutoff only moves on from it.
        const page = yield* tenantCutoffs(sql`
          SELECT id, now() - make_interval(secs => coalesce(retention_seconds, ${defaultSeconds}::float8)) AS cutoff
          FROM tenants WHERE id > ${after} AND deleted_at IS NULL ORDER BY id LIMIT ${tenantPage}`)
        for (const tenant of page) {
          events += yield* purgeTenant(tenant.id, tenant.cutoff)
        }
        tenants += page.length
        const last = page.at(-1)
        if (page.length < tenantPage || last === undefined) return { events, tenants, tenantsRemoved }
        after = last.id
      }
    }).pipe(sqlFailuresAsDefects, Effect.withSpan("RetentionPurge.purge"))

    return RetentionPurge.of({ purge })
  })

export const RetentionPurgeLive = (
  options: RetentionPurgeOptions = defaultRetentionPurgeOptions
): Layer.Layer<RetentionPurge, never, SqlClient.SqlClient | AppConfig> =>
  Layer.effect(
    RetentionPurge,
    Effect.gen(function* () {
      const config = yield* AppConfig
      return yield* makeRetentionPurge(config.retention.keep, options)
    })
  )

/**
 * Runs a pass every RETENTION_PURGE_INTERVAL for the lifetime of the layer; the first waits one period too, so replicas
 * starting together do not all purge at once (and several replicas purging together skip each other's locked rows).
 * A failing pass is logged and the next one tries again.
 */
export const RetentionPurgeLoopLive: Layer.Layer<never, never, RetentionPurge | AppConfig> = Layer.effectDiscard(
  Effect.gen(function* () {
    const every = (yield* AppConfig).retention.purgeEvery
    const retention = yield* RetentionPurge
    const pass = retention.purge.pipe(
      Effect.tap((report) =>
        report.events > 0
          ? Effect.logInfo("retention: events past retention removed").pipe(
              Effect.annotateLogs({ events: report.events, tenants: report.tenants })
            )
          : Effect.void
      ),
      Effect.catchCause((cause) => Effect.logWarning("retention: purge failed; the next pass tries again", cause))
    )
    yield* Effect.forkScoped(Effect.repeat(Effect.sleep(every).pipe(Effect.andThen(pass)), Schedule.forever))
  })
)
