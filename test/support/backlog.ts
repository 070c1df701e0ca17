import type { SqlClient } from "effect/sql"

/** A tenant and one of its endpoints, as the outbox's rows name them. */
export interface BacklogEndpoint {
  readonly tenant_id: string
  readonly endpoint_id: string
}

/**
 * A tenant named `name` with `endpoints` endpoints (default 1), written straight into the tables: URLs
 * `http://127.0.0.1:9/<path>` (`path` then the endpoint's number when there are several), secret `s`; no worker is
 * meant to send to them.
 */
export const insertTenantWithEndpoints = (
  sql: SqlClient.SqlClient,
  tenant: { readonly name: string; readonly endpoints?: number; readonly path?: string }
) => sql<BacklogEndpoint>`
  WITH t AS (INSERT INTO tenants (id, name) VALUES ('ten_' || codex_ulid(), ${tenant.name}) RETURNING id)
  INSERT INTO endpoints (id, tenant_id, url, secret)
  SELECT 'ep_' || codex_ulid(), t.id,
         'http://127.0.0.1:9/' || ${tenant.path ?? ""} || CASE WHEN ${tenant.endpoints ?? 1}::int > 1 THEN n::text ELSE '' END,
         's'
  FROM t, generate_series(1, ${tenant.endpoints ?? 1}::int) n
  ORDER BY n
  RETURNING tenant_id, id AS endpoint_id`

/**
 * A tenant's backlog written straight into the outbox, for tests that need thousands of due deliveries faster than
 * publishing them: `events` events of type `backlog.item`, each with one delivery to every endpoint `endpointIds`
 * names (or, when it is omitted, every endpoint of the tenant), due an hour ago. One statement: it notifies nobody,
 * so a worker finds it at its next poll or claim.
 */
export const insertDueBacklog = (
  sql: SqlClient.SqlClient,
  backlog: { readonly tenantId: string; readonly events: number; readonly endpointId?: string }
) => sql`
  WITH ev AS (
    INSERT INTO events (id, tenant_id, type, data, occurred_at)
    SELECT 'evt_' || codex_ulid(), ${backlog.tenantId}, 'backlog.item', '{}', now()
    FROM generate_series(1, ${backlog.events})
    RETURNING id
  )
  INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, next_attempt_at)
  SELECT 'dlv_' || codex_ulid(), ${backlog.tenantId}, ev.id, ep.id, now() - interval '1 hour'
  FROM ev CROSS JOIN (
    SELECT id FROM endpoints
    WHERE tenant_id = ${backlog.tenantId}
      AND (${backlog.endpointId ?? null}::text IS NULL OR id = ${backlog.endpointId ?? null})
  ) ep`

/**
 * One event of `type` and its delivery to `endpoint`, written straight into the tables: due now, or `dueMinutesAgo`
 * minutes ago; leased by another worker (`wkr_elsewhere`) for `leasedForMinutes` from now (negative: expired) when
 * given. Returns the delivery's row (`id`).
 */
export const insertDelivery = (
  sql: SqlClient.SqlClient,
  endpoint: BacklogEndpoint,
  delivery: { readonly type: string; readonly dueMinutesAgo?: number; readonly leasedForMinutes?: number | null }
) => {
  const leased = delivery.leasedForMinutes ?? null
  return sql<{ readonly id: string }>`
    WITH ev AS (
      INSERT INTO events (id, tenant_id, type, data, occurred_at)
      VALUES ('evt_' || codex_ulid(), ${endpoint.tenant_id}, ${delivery.type}, '{}', now())
      RETURNING id
    )
    INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, next_attempt_at, locked_until, locked_by)
    SELECT 'dlv_' || codex_ulid(), ${endpoint.tenant_id}, ev.id, ${endpoint.endpoint_id},
           now() - make_interval(mins => ${delivery.dueMinutesAgo ?? 0}),
           now() + make_interval(mins => ${leased}), ${leased === null ? null : "wkr_elsewhere"}
    FROM ev
    RETURNING id`
}

/** How an endpoint's backlog stands: due (and free), or scheduled an hour ahead (retries backing off). */
export type BacklogState = "due" | "scheduled"

/**
 * `rows` deliveries to one endpoint, each to an event of its own, in one statement: due within the last hour, or
 * scheduled an hour ahead, times a millisecond apart as a real backlog's are. Ids share one ULID's first 16 characters
 * and end in the row number: thousands of codex_ulid() calls would take seconds.
 */
export const insertEndpointBacklog = (
  sql: SqlClient.SqlClient,
  backlog: {
    readonly tenantId: string
    readonly endpointId: string
    readonly rows: number
    readonly state: BacklogState
  }
) => {
  const step = sql`make_interval(secs => n / 1000.0)`
  const nextAttemptAt =
    backlog.state === "scheduled" ? sql`now() + interval '1 hour' + ${step}` : sql`now() - interval '1 hour' + ${step}`
  return sql`
    WITH prefix AS (SELECT left(codex_ulid(), 16) AS ulid), ev AS (
      INSERT INTO events (id, tenant_id, type, data, occurred_at)
      SELECT 'evt_' || prefix.ulid || lpad(n::text, 10, '0'), ${backlog.tenantId}, 'backlog.item', '{}', now()
      FROM prefix, generate_series(1, ${backlog.rows}::int) n
      RETURNING id
    )
    INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, next_attempt_at)
    SELECT 'dlv_' || right(ev.id, 26), ${backlog.tenantId}, ev.id, ${backlog.endpointId}, ${nextAttemptAt}
    FROM ev, LATERAL (SELECT right(ev.id, 10)::int AS n) numbered`
}
