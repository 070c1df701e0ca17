import { Effect, Option, Schema } from "effect"
import type { SqlClient } from "effect/sql"
import type { ApiKeyOwner } from "../services/ApiKeyAuth.ts"
import { PortalSessionId, TenantId } from "../src/domain/Ids.ts"
import { decodeRows } from "./SqlRows.ts"
import { catalogInUseColumn, quotaOf } from "./TenantAccessSql.ts"

/** A live portal session, its tenant and what the tenant's API keys would also tell (quota, catalog). */
const SessionRow = Schema.Struct({
  id: PortalSessionId,
  tenant_id: TenantId,
  read_only: Schema.Boolean,
  expires_at: Schema.Date,
  rate_limit_max: Schema.NullOr(Schema.Int),
  rate_limit_window_seconds: Schema.NullOr(Schema.Int),
  catalog_in_use: Schema.Boolean
})
const sessionRows = decodeRows(SessionRow)

/** What the key cache keeps of a credential found: its owner and when it expires (ms; null = never). */
export interface CredentialFound {
  readonly owner: ApiKeyOwner
  readonly expiresAt: number | null
}

/**
 * The portal session whose token hashes to `hashHex`, as ApiKeyAuthLive's cache keeps an API key: not revoked, of a
 * tenant not being deleted. An expired one is found too; its expiry is checked on every request against the clock,
 * never left to the cache. A read-only session has the `read` scope, so it meets the same 403 as a `read` key.
 */
export const lookupPortalSession = (sql: SqlClient.SqlClient, hashHex: string) =>
  sessionRows(sql`
    SELECT s.id, s.tenant_id, s.read_only, s.expires_at, t.rate_limit_max, t.rate_limit_window_seconds,
           ${sql.literal(catalogInUseColumn)} AS catalog_in_use
    FROM portal_sessions s JOIN tenants t ON t.id = s.tenant_id
    WHERE s.token_hash = decode(${hashHex}, 'hex') AND s.revoked_at IS NULL AND t.deleted_at IS NULL`).pipe(
    Effect.map((rows) =>
      Option.map(
        Option.fromNullishOr(rows[0]),
        (row): CredentialFound => ({
          owner: {
            tenantId: row.tenant_id,
            credential: { _tag: "PortalSession", sessionId: row.id },
            scope: row.read_only ? "read" : "full",
            rateLimit: quotaOf(row),
            catalogInUse: row.catalog_in_use
          },
          expiresAt: row.expires_at.getTime()
        })
      )
    )
  )
