import type { SqlClient, Statement } from "effect/sql"
import type { KeyClaim } from "../services/IdempotencyStore.ts"

/** The key row while `claim` still holds it (ours, in progress). */
export const ownedBy = (sql: SqlClient.SqlClient, claim: KeyClaim): Statement.Fragment => sql`
  scope = ${claim.request.scope} AND key = ${claim.request.key} AND lock_token = ${claim.token}
  AND state = 'in_progress'`

/** `expires_at` of a key completed now: IDEMPOTENCY_TTL from its completion. */
export const expiresFromNow = (sql: SqlClient.SqlClient, claim: KeyClaim): Statement.Fragment =>
  sql`now() + make_interval(secs => ${claim.ttlSeconds}::float8)`

/**
 * Completing a claim inside a repository's own write statement, as two CTEs of it (instead of a transaction around
 * the write and IdempotencyStore.complete: two round trips fewer on the hot path). `held` yields one row while the
 * claim is still ours and locks the key row until the statement commits (so no one takes it over in between): the
 * write must select FROM it, so that it writes nothing once the claim is lost. `complete(ref)` marks the key completed
 * with `ref` (jsonb): the repository's own record of its answer, from which the handler answers a replay again. One
 * statement is atomic: the write and the completed key commit together or not at all.
 */
export interface CompletionInWrite {
  readonly held: Statement.Fragment
  readonly complete: (ref: Statement.Fragment) => Statement.Fragment
}

export const completionInWrite = (sql: SqlClient.SqlClient, claim: KeyClaim): CompletionInWrite => ({
  held: sql`SELECT 1 FROM idempotency_keys WHERE ${ownedBy(sql, claim)} FOR UPDATE`,
  complete: (ref) => sql`
    UPDATE idempotency_keys
    SET state = 'completed', response_ref = ${ref}, response_status = NULL, response_headers = NULL,
        response_body = NULL, completed_at = now(), expires_at = ${expiresFromNow(sql, claim)}
    WHERE ${ownedBy(sql, claim)}
    RETURNING 1`
})
