import { Duration } from "effect"
import type { SqlClient, Statement } from "effect/sql"
import type { TenantId } from "../src/domain/Ids.ts"

/**
 * What reads may show under retention (RETENTION, or the tenant's own `retention_seconds`): the rows the purge
 * (RetentionPurgeLive) will leave, so the API looks the same before and after it runs. An event is kept while it is
 * younger than the cutoff or has a pending delivery (that delivery, and it, stay until it ends); a delivery while it
 * is younger than the cutoff or pending; an attempt with its delivery. The cutoff is the database's `now()` minus the
 * tenant's retention, read by primary key in the statement itself, so a change by the admin applies to the next read.
 */
export interface RetainedRows {
  /** `now()` minus the tenant's retention, as a SQL expression. */
  readonly cutoff: (tenantId: TenantId) => Statement.Fragment
  /** A condition on `alias` (an events row): the event is visible. */
  readonly event: (tenantId: TenantId, alias: string) => Statement.Fragment
  /** A condition on `alias` (a deliveries row): the delivery is visible. */
  readonly delivery: (tenantId: TenantId, alias: string) => Statement.Fragment
}

/**
 * A condition on `alias` (an events row): one of its deliveries is pending. A probe of `deliveries_event_idx` per
 * event asked about (an event has a few deliveries), whatever the backlog: a scalar subquery, not EXISTS, which the
 * planner may turn into a hash of every pending delivery of every tenant; and `status || ''`, so that the partial
 * index of pending deliveries (`deliveries_due_idx`), which the planner would otherwise prefer, cannot serve it:
 * walking a large backlog of other events' deliveries for each event.
 */
export const hasPendingDelivery = (sql: SqlClient.SqlClient, alias: string): Statement.Fragment =>
  sql`(SELECT rp.id FROM deliveries rp
    WHERE rp.event_id = ${sql.unsafe(`${alias}.id`)} AND (rp.status || '') = 'pending' LIMIT 1) IS NOT NULL`

export const retainedRows = (sql: SqlClient.SqlClient, retention: Duration.Duration): RetainedRows => {
  const defaultSeconds = Duration.toMillis(retention) / 1000
  const cutoff = (tenantId: TenantId) => sql`(now() - make_interval(secs => coalesce(
    (SELECT rt.retention_seconds FROM tenants rt WHERE rt.id = ${tenantId}), ${defaultSeconds}::float8)))`
  return {
    cutoff,
    event: (tenantId, alias) =>
      sql`(${sql.unsafe(`${alias}.created_at`)} >= ${cutoff(tenantId)} OR ${hasPendingDelivery(sql, alias)})`,
    delivery: (tenantId, alias) =>
      sql`(${sql.unsafe(`${alias}.created_at`)} >= ${cutoff(tenantId)} OR ${sql.unsafe(`${alias}.status`)} = 'pending')`
  }
}
