import type { SqlClient } from "effect/sql"

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
