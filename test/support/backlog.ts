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
