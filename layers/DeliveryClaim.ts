import { Schema } from "effect"
import type { SqlClient } from "effect/sql"
import { decodeRows } from "./SqlRows.ts"

/** A due delivery, claimed by this worker, with what is needed to send it. */
/**
 * A claimed delivery with its event and endpoint, decoded (see `decodeRows`: the worker's input is checked like every
 * repository's: 2-5 µs a row in a micro-benchmark, about 1% of the worker's CPU per delivery).
 */
export const ClaimedRow = Schema.Struct({
  id: Schema.String,
  tenant_id: Schema.String,
  event_id: Schema.String,
  endpoint_id: Schema.String,
  attempt_count: Schema.Int,
  traceparent: Schema.NullOr(Schema.String),
  event_type: Schema.String,
  /**
   * `events.data` as text (`json` keeps it as published): the body embeds it without parsing it. NULL once expunged:
   * such a delivery is cancelled, never sent (see `hasEventData`).
   */
  event_data: Schema.NullOr(Schema.String.pipe(Schema.brand("JsonText"))),
  event_occurred_at: Schema.Date,
  event_created_at: Schema.Date,
  url: Schema.String,
  endpoint_deleted: Schema.Boolean,
  /** Sealed (SecretBox), or a legacy plaintext an older replica wrote; NULL once the endpoint is deleted. */
  secret: Schema.NullOr(Schema.String),
  /** Only while the rotation overlap lasts; sealed like `secret`. */
  previous_secret: Schema.NullOr(Schema.String),
  /** The endpoint's custom headers, sealed (NULL: none). */
  endpoint_headers: Schema.NullOr(Schema.String),
  /**
   * In how many milliseconds a throttled endpoint's next turn comes, as the database's clock has it (NULL: not
   * throttled): the worker claims again then.
   */
  endpoint_turn_in_ms: Schema.NullOr(Schema.Number),
  /** Since when every attempt to the endpoint has failed (NULL: its last attempt succeeded), as of the claim. */
  endpoint_failing_since: Schema.NullOr(Schema.Date)
})
export type ClaimedRow = typeof ClaimedRow.Type
const claimedRows = decodeRows(ClaimedRow)

/** A claimed delivery whose event still has its data: the only kind that can be sent. */
export type SendableRow = ClaimedRow & { readonly event_data: NonNullable<ClaimedRow["event_data"]> }

/**
 * False for a delivery of an expunged event. The expunge cancels its pending deliveries under a lock the claim skips,
 * so only a re-queue that raced it (a retry or recover that read the event just before) can bring one here.
 */
export const hasEventData = (row: ClaimedRow): row is SendableRow => row.event_data !== null

export interface ClaimRequest {
  /** Free slots of the process (`DELIVERY_CONCURRENCY` minus its sends in flight). */
  readonly limit: number
  /** Sends in flight here per endpoint id, and per tenant id. */
  readonly busyEndpoints: ReadonlyMap<string, number>
  readonly busyTenants: ReadonlyMap<string, number>
  /** `DELIVERY_ENDPOINT_CONCURRENCY` and `DELIVERY_TENANT_CONCURRENCY`. */
  readonly endpointConcurrency: number
  readonly tenantConcurrency: number
  readonly leaseSeconds: number
  readonly workerId: string
}

/**
 * The body of a recursive CTE (`WITH RECURSIVE pending_endpoints AS (...)`): each endpoint with pending deliveries and
 * its oldest `next_attempt_at`, by a loose scan of `deliveries_endpoint_due_idx` (one index probe per endpoint, however
 * long its backlog).
 */
export const pendingEndpoints = (sql: SqlClient.SqlClient) => sql`
  (SELECT endpoint_id, next_attempt_at AS oldest FROM deliveries WHERE status = 'pending'
   ORDER BY endpoint_id, next_attempt_at LIMIT 1)
  UNION ALL
  SELECT next.endpoint_id, next.oldest
  FROM pending_endpoints p CROSS JOIN LATERAL (
    SELECT d.endpoint_id, d.next_attempt_at AS oldest FROM deliveries d
    WHERE d.status = 'pending' AND (d.endpoint_id, d.next_attempt_at) > (p.endpoint_id, 'infinity')
    ORDER BY d.endpoint_id, d.next_attempt_at LIMIT 1
  ) next`

/**
 * The claim: due deliveries, fairly across tenants and endpoints, leased to this worker, in one statement.
 *
 * - It walks the endpoints that have pending deliveries, reading each one's oldest (a loose scan of
 *   `deliveries_endpoint_due_idx`: one index probe per endpoint, however long its backlog). An endpoint with nothing
 *   due yet, at its own limit, or whose tenant is at its limit is left there; for the others one more probe finds
 *   the oldest due delivery that no worker holds (past the few in flight). A paused endpoint (`paused_until`: its
 *   circuit is open) is left there too, whatever its backlog: nothing of it is read but that one row.
 * - Of the rest, each tenant gets at most as many endpoints as it has room, its longest-waiting first, and at most
 *   `limit` endpoints in all, the tenants with the fewest sends in flight first. From each, it takes in
 *   `next_attempt_at` order at most the room the endpoint has left and its share of its tenant's (the tenant's room,
 *   up to `limit`, over its chosen endpoints, rounded up: the hand-out below takes every endpoint's first row before
 *   any second one, so rows past the share would be locked only to be dropped; taking the endpoint's whole room,
 *   a claim of 42 rows locked 168). `FOR UPDATE SKIP LOCKED`: rows another worker is claiming are passed over, never
 *   waited for. So a claim locks at most `limit` × `endpointConcurrency` rows, however many endpoints have deliveries
 *   due; about `limit` when one tenant's endpoints fill the claim (with several, each tenant's share is reckoned on
 *   all of `limit`, so more may be locked than handed out, never more than its endpoints' room).
 * - It then hands out the free slots round-robin: each tenant's candidates ranked across its endpoints (every
 *   endpoint's oldest first), and tenants by how many sends they would have in flight, the least first. So a quiet
 *   tenant's new delivery goes ahead of a noisy tenant's older backlog, and no tenant goes past its cap.
 * - Both reads of one endpoint's deliveries name it as `endpoint_id = ANY (ARRAY[...])` and sort by `endpoint_id`
 *   then `next_attempt_at`: only `deliveries_endpoint_due_idx` serves them so, and its scan stops at the endpoint's
 *   last due row. With `endpoint_id = ...` the planner takes the endpoint as fixed and the sort as time order alone,
 *   and may walk `deliveries_due_idx` in time order, filtering on the endpoint: it read a hot endpoint's whole backlog
 *   to find a quiet endpoint's one delivery (1,298 pages with 50,000 due rows, 98 with 1,000). Row comparisons on
 *   `(endpoint_id, next_attempt_at)`, used before, keep it off that index, but PostgreSQL 15 ends an index scan at a
 *   row comparison's bound only where its first column decides: the scan for an endpoint's due rows read on through
 *   all its later ones to the next endpoint (1,000,000 retries scheduled and one new delivery: 14,327 pages). `= ANY`
 *   of one element is an equality the scan stops on, and no equivalence the planner shortens the sort with.
 * - The probe and the candidates pass over leases still held, row by row: as many as the workers have in flight to
 *   the endpoint (`endpointConcurrency` each at most), however long its backlog. Indexing the lease would skip them
 *   (partial indexes on free and on leased rows: 5 ms beside 1,000,000 leased rows, where passing them takes 660 ms),
 *   but then every claim writes a new entry in every index, where now it stays on its page (migration 0014).
 * - Candidates locked but not taken are released when the statement ends (it runs alone, outside a transaction).
 */
export const claimDueStatement = (sql: SqlClient.SqlClient, request: ClaimRequest) => {
  const busyEndpoints = JSON.stringify(Object.fromEntries(request.busyEndpoints))
  const busyTenants = JSON.stringify(Object.fromEntries(request.busyTenants))
  const tenantCap = request.tenantConcurrency
  return sql`
    WITH RECURSIVE pending_endpoints AS (${pendingEndpoints(sql)}), open AS (
      SELECT o.*, free.oldest FROM (
        SELECT ep.id AS endpoint_id, ep.tenant_id, ep.rate_limit,
               ${request.endpointConcurrency} - COALESCE((${busyEndpoints}::jsonb ->> ep.id)::int, 0) AS endpoint_room,
               COALESCE((${busyTenants}::jsonb ->> ep.tenant_id)::int, 0) AS tenant_busy
        FROM pending_endpoints p JOIN endpoints ep ON ep.id = p.endpoint_id
        WHERE p.oldest <= now() AND (ep.paused_until IS NULL OR ep.paused_until <= now())
          -- A disabled endpoint's deliveries wait (disabled for failing, or queued by a publish that raced the PATCH).
          AND ep.enabled
          -- A throttled endpoint (rate_limit) is open when its turn has come (see throttled, below).
          AND (ep.rate_limit IS NULL OR ep.throttle_next IS NULL OR ep.throttle_next <= now())
      ) o
      -- Its oldest due delivery nobody holds: one leased elsewhere must not make the endpoint look claimable.
      CROSS JOIN LATERAL (
        SELECT d.next_attempt_at AS oldest FROM deliveries d
        WHERE d.endpoint_id = ANY (ARRAY[o.endpoint_id]) AND d.status = 'pending' AND d.next_attempt_at <= now()
          AND (d.locked_until IS NULL OR d.locked_until < now())
        ORDER BY d.endpoint_id, d.next_attempt_at
        LIMIT 1
      ) free
      WHERE o.endpoint_room > 0 AND o.tenant_busy < ${tenantCap}
    ), chosen AS (
      SELECT c.*, count(*) OVER (PARTITION BY c.tenant_id) AS tenant_endpoints FROM (
        SELECT * FROM (
          SELECT o.*, row_number() OVER (PARTITION BY tenant_id ORDER BY oldest, endpoint_id) AS endpoint_rank
          FROM open o
        ) r
        WHERE tenant_busy + endpoint_rank <= ${tenantCap}
        ORDER BY tenant_busy + endpoint_rank, oldest, endpoint_id
        LIMIT ${request.limit}
      ) c
    ), candidates AS (
      SELECT c.id, o.tenant_id, o.endpoint_id, o.rate_limit, c.next_attempt_at, o.tenant_busy,
             row_number() OVER (PARTITION BY o.endpoint_id ORDER BY c.next_attempt_at, c.id) AS endpoint_nth
      FROM chosen o CROSS JOIN LATERAL (
        SELECT d.id, d.next_attempt_at FROM deliveries d
        WHERE d.endpoint_id = ANY (ARRAY[o.endpoint_id]) AND d.status = 'pending' AND d.next_attempt_at <= now()
          AND (d.locked_until IS NULL OR d.locked_until < now())
        ORDER BY d.endpoint_id, d.next_attempt_at
        LIMIT LEAST(o.endpoint_room, ceil(LEAST(${tenantCap} - o.tenant_busy, ${request.limit}) / o.tenant_endpoints::numeric)::int,
                    CASE WHEN o.rate_limit IS NULL THEN 2147483647 ELSE 1 END)
        FOR UPDATE SKIP LOCKED
      ) c
    ), ranked AS (
      SELECT id, endpoint_id, rate_limit, next_attempt_at, tenant_busy,
             row_number() OVER (PARTITION BY tenant_id ORDER BY endpoint_nth, next_attempt_at, id) AS tenant_nth
      FROM candidates
    ), picked AS (
      SELECT id, endpoint_id, rate_limit FROM ranked
      WHERE tenant_busy + tenant_nth <= ${tenantCap}
      ORDER BY tenant_busy + tenant_nth, next_attempt_at, id
      LIMIT ${request.limit}
    ), throttled AS (
      -- A throttled endpoint's one delivery gets its turn here, and the endpoint's next turn moves 1.2 / rate_limit
      -- seconds on (20% over: a turn is granted at the claim, and a send that leaves late on a busy worker must not
      -- bring six arrivals into one second at 5/s; 2% and 10% were too little on a loaded 2-core machine). SKIP
      -- LOCKED: a claim on another worker (or a PATCH) holding the row means no turn now, never a wait; and the
      -- condition is read again on the row as it is, so two claims can never both take the same turn.
      UPDATE endpoints ep SET throttle_next = GREATEST(COALESCE(ep.throttle_next, now()), now())
                                              + make_interval(secs => 1.2 / ep.rate_limit)
      WHERE ep.id IN (SELECT e.id FROM endpoints e
                      WHERE e.id IN (SELECT endpoint_id FROM picked WHERE rate_limit IS NOT NULL)
                        AND (e.throttle_next IS NULL OR e.throttle_next <= now())
                      FOR UPDATE SKIP LOCKED)
      RETURNING ep.id, ep.throttle_next
    ), claimed AS (
      UPDATE deliveries d
      SET locked_until = now() + make_interval(secs => ${request.leaseSeconds}), locked_by = ${request.workerId},
          updated_at = now()
      WHERE d.id IN (SELECT id FROM picked
                     WHERE rate_limit IS NULL OR endpoint_id IN (SELECT id FROM throttled))
      RETURNING d.id, d.tenant_id, d.event_id, d.endpoint_id, d.attempt_count, d.traceparent
    )
    SELECT c.id, c.tenant_id, c.event_id, c.endpoint_id, c.attempt_count, c.traceparent,
           ev.type AS event_type, ev.data::text AS event_data, ev.occurred_at AS event_occurred_at,
           ev.created_at AS event_created_at,
           ep.url, ep.deleted_at IS NOT NULL AS endpoint_deleted, ep.secret,
           CASE WHEN ep.previous_secret_expires_at > now() THEN ep.previous_secret END AS previous_secret,
           ep.headers AS endpoint_headers, ep.failing_since AS endpoint_failing_since,
           (extract(epoch FROM t.throttle_next - now()) * 1000)::float8 AS endpoint_turn_in_ms
    FROM claimed c
    JOIN events ev ON ev.id = c.event_id
    JOIN endpoints ep ON ep.id = c.endpoint_id
    LEFT JOIN throttled t ON t.id = c.endpoint_id`
}

/** `claimDueStatement` run, its rows decoded. */
export const claimDue = (sql: SqlClient.SqlClient, request: ClaimRequest) =>
  claimedRows(claimDueStatement(sql, request))
