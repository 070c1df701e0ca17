import { Effect } from "effect"
import type { SqlClient, SqlError } from "effect/sql"
import { DeliveryRecovered, EndpointDisabled } from "../src/domain/OperationalEvents.ts"
import type { ClaimedRow } from "./DeliveryClaim.ts"
import { operationalEventCtes, operationalQueued } from "./OperationalEventsSql.ts"

/** One recorded attempt, as the endpoint's failing streak sees it. */
export interface AttemptSeen {
  readonly row: ClaimedRow
  readonly succeeded: boolean
}

/**
 * An endpoint's failing streak (`endpoints.failing_since`, migration 0016): the first failed attempt after a success
 * starts it, a success ends it (`codex.delivery.recovered`), and an endpoint whose attempts have all failed for
 * `disableAfterSeconds` (ENDPOINT_DISABLE_AFTER) is disabled (`codex.endpoint.disabled`, reason `failing`) — its
 * pending deliveries are not cancelled: the claim skips a disabled endpoint's, and enabling it sends them.
 *
 * Called after a batch of attempts is recorded, with the batch. It asks the database only when the batch can change a
 * streak, judged from each claimed row's `endpoint_failing_since`: a success on a failing endpoint, a failure on one
 * not failing yet, or a failure on one failing for longer than the limit. The usual batch (successes on healthy
 * endpoints) costs nothing. The statement checks every condition again on the rows themselves: a stale claimed row
 * costs a statement that changes nothing, or leaves the change to the next attempt. Not atomic with the recording: a
 * crash in between leaves the streak as it was, and the next attempt moves it. An endpoint with a success in the
 * batch counts as succeeding.
 */
export const makeEndpointHealth = (sql: SqlClient.SqlClient, options: { readonly disableAfterSeconds: number }) => {
  const disableAfterMs = options.disableAfterSeconds * 1000

  const statement = (succeeded: ReadonlyMap<string, string>, failed: ReadonlySet<string>) =>
    sql<{ readonly operational_queued: number }>`
      WITH succeeded AS (
        SELECT * FROM json_to_recordset(${JSON.stringify(
          [...succeeded].map(([endpoint_id, delivery_id]) => ({ endpoint_id, delivery_id }))
        )}::json) AS s(endpoint_id text, delivery_id text)
      ), failed AS (
        SELECT value AS endpoint_id FROM json_array_elements_text(${JSON.stringify([...failed])}::json)
      ), before AS (
        SELECT id, failing_since FROM endpoints WHERE id IN (SELECT endpoint_id FROM succeeded)
      ), recovered AS (
        UPDATE endpoints e SET failing_since = NULL
        FROM succeeded s JOIN before b ON b.id = s.endpoint_id
        WHERE e.id = s.endpoint_id AND e.failing_since IS NOT NULL
        RETURNING e.id, e.tenant_id, s.delivery_id, b.failing_since
      ), started AS (
        UPDATE endpoints e SET failing_since = now()
        FROM failed f WHERE e.id = f.endpoint_id AND e.failing_since IS NULL AND e.deleted_at IS NULL
        RETURNING e.id
      ), disabled AS (
        UPDATE endpoints e SET enabled = false, updated_at = now(),
          disabled_reason = 'every attempt failed since ' || to_char(e.failing_since AT TIME ZONE 'UTC',
                                                                     'YYYY-MM-DD"T"HH24:MI:SS"Z"')
        FROM failed f
        WHERE e.id = f.endpoint_id AND e.enabled AND e.deleted_at IS NULL
          AND e.failing_since <= now() - make_interval(secs => ${options.disableAfterSeconds})
        RETURNING e.id, e.tenant_id
      ), ${operationalEventCtes(
        sql,
        sql`SELECT d.tenant_id, ${EndpointDisabled}::text AS type,
                   json_build_object('endpointId', d.id, 'reason', 'failing') AS data, d.id AS about_endpoint
            FROM disabled d
            UNION ALL
            SELECT r.tenant_id, ${DeliveryRecovered}::text,
                   json_build_object('endpointId', r.id, 'deliveryId', r.delivery_id,
                                     'failingSince', to_char(r.failing_since AT TIME ZONE 'UTC',
                                                             'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
                   r.id
            FROM recovered r`
      )}
      SELECT (SELECT count(*)::int FROM started) AS started, ${operationalQueued(sql)} AS operational_queued`

  return (attempts: ReadonlyArray<AttemptSeen>): Effect.Effect<void, SqlError.SqlError> => {
    const succeeded = new Map<string, string>()
    const failed = new Map<string, ClaimedRow>()
    for (const attempt of attempts) {
      if (attempt.succeeded) succeeded.set(attempt.row.endpoint_id, attempt.row.id)
      else failed.set(attempt.row.endpoint_id, attempt.row)
    }
    for (const endpointId of succeeded.keys()) failed.delete(endpointId)
    const now = Date.now()
    const changes =
      attempts.some((a) => a.succeeded && a.row.endpoint_failing_since !== null && succeeded.has(a.row.endpoint_id)) ||
      [...failed.values()].some(
        (row) => row.endpoint_failing_since === null || row.endpoint_failing_since.getTime() <= now - disableAfterMs
      )
    return changes ? Effect.asVoid(statement(succeeded, new Set(failed.keys()))) : Effect.void
  }
}
