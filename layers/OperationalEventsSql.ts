import type { SqlClient, Statement } from "effect/sql"
import { deliveryChannel } from "../src/domain/Delivery.ts"
import { namesEventType } from "./EventTypeFilterSql.ts"

/**
 * Operational events (src/domain/OperationalEvents.ts) written by the very statement that changes what they report,
 * as CTEs of it: the change and its events commit together or not at all. `source` selects one row per event:
 * `tenant_id`, `type`, `data` (json, built with `json_build_object` so members keep their order) and
 * `about_endpoint` (the endpoint it is about, never a recipient; NULL for none).
 *
 * Recipients: the tenant's enabled, live endpoints that name the type in their filter, exactly or by a `prefix.*`
 * pattern (an empty filter, "every event", does not count). The statement must select `operationalQueued` so that
 * the NOTIFY waking the workers runs (a CTE that only SELECTs runs only when read).
 */
export const operationalEventCtes = (sql: SqlClient.SqlClient, source: Statement.Fragment): Statement.Fragment => sql`
  op_source AS MATERIALIZED (
    SELECT 'evt_' || codex_ulid() AS event_id, s.tenant_id, s.type, s.data, s.about_endpoint FROM (${source}) s
  ), op_events AS (
    INSERT INTO events (id, tenant_id, type, data, occurred_at)
    SELECT event_id, tenant_id, type, data::json, now() FROM op_source
    RETURNING id
  ), op_deliveries AS (
    INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id)
    SELECT 'dlv_' || codex_ulid(), s.tenant_id, s.event_id, e.id
    FROM op_source s JOIN endpoints e ON e.tenant_id = s.tenant_id
    WHERE e.enabled AND e.deleted_at IS NULL AND e.id IS DISTINCT FROM s.about_endpoint
      AND ${namesEventType(sql, sql`s.type`)}
    RETURNING endpoint_id
  ), op_notified AS (
    SELECT pg_notify(${deliveryChannel}, '') FROM (SELECT 1 FROM op_deliveries LIMIT 1) AS any_queued
  )`

/** How many deliveries the operational events queued (reading it runs the NOTIFY). */
export const operationalQueued = (sql: SqlClient.SqlClient): Statement.Fragment =>
  sql`((SELECT count(*)::int FROM op_deliveries) + (SELECT count(*)::int * 0 FROM op_notified))`
