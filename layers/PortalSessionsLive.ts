import { Duration, Effect, Layer, Option, Redacted, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { ApiKeyAuth } from "../services/ApiKeyAuth.ts"
import { PortalSessions } from "../services/PortalSessions.ts"
import { apiKeysChannel } from "../src/domain/ApiKey.ts"
import { newId, type PortalSessionId, TenantId } from "../src/domain/Ids.ts"
import { issuePortalToken } from "../src/domain/PortalSession.ts"
import { sqlFailuresAsDefects } from "./SqlFailures.ts"
import { decodeRows, iso } from "./SqlRows.ts"

const createdRows = decodeRows(Schema.Struct({ expires_at: Schema.Date }))
const revokedRows = decodeRows(Schema.Struct({ tenant_id: TenantId, notified: Schema.Int }))

/** Expired sessions are kept this long (a revoked one expires too), then cleared when the tenant creates another. */
const keepExpired = "1 day"

export const PortalSessionsLive: Layer.Layer<PortalSessions, never, SqlClient.SqlClient | ApiKeyAuth> = Layer.effect(
  PortalSessions,
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const auth = yield* ApiKeyAuth

    return PortalSessions.of({
      create: Effect.fn("PortalSessions.create")(function* (tenantId, input) {
        const id = yield* newId("pss")
        const token = yield* issuePortalToken
        const seconds = Duration.toMillis(input.lifetime) / 1000
        // One statement: the session, for a tenant that exists and is not being deleted, and the tenant's old ones
        // cleared (bounded: only what this tenant let expire, by the (tenant_id, expires_at) index).
        const [row] = yield* createdRows(sql`
          WITH tenant AS (
            SELECT id FROM tenants WHERE id = ${tenantId} AND deleted_at IS NULL
          ), cleared AS (
            DELETE FROM portal_sessions s USING tenant
            WHERE s.tenant_id = tenant.id AND s.expires_at < now() - ${keepExpired}::interval
          )
          INSERT INTO portal_sessions (id, tenant_id, token_hash, read_only, expires_at)
          SELECT ${id}, tenant.id, ${token.hash}, ${input.readOnly}, now() + make_interval(secs => ${seconds})
          FROM tenant
          RETURNING expires_at`)
        return Option.map(Option.fromNullishOr(row), (created) => ({
          id: id as PortalSessionId,
          token: Redacted.value(token.secret),
          readOnly: input.readOnly,
          expiresAt: iso(created.expires_at)
        }))
      }, sqlFailuresAsDefects),

      revoke: Effect.fn("PortalSessions.revoke")(function* (tenantId, id) {
        const owner = tenantId === "any" ? sql`` : sql`AND tenant_id = ${tenantId}`
        // Every replica forgets the tenant's cached credentials once this commits (the API keys' channel: one LISTEN
        // serves both); this one forgets them after the commit, below.
        const [row] = yield* revokedRows(sql`
          WITH revoked AS (
            UPDATE portal_sessions SET revoked_at = coalesce(revoked_at, now()) WHERE id = ${id} ${owner}
            RETURNING tenant_id
          ), notified AS (
            SELECT pg_notify(${apiKeysChannel}, tenant_id) FROM revoked
          )
          SELECT tenant_id, (SELECT count(*)::int FROM notified) AS notified FROM revoked`)
        if (row === undefined) return false
        yield* sql.afterCommit(auth.invalidateTenant(row.tenant_id))
        return true
      }, sqlFailuresAsDefects)
    })
  })
)
