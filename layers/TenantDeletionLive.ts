import { Effect, Layer, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { ApiKeyAuth } from "../services/ApiKeyAuth.ts"
import { TenantDeletion } from "../services/TenantDeletion.ts"
import { apiKeysChannel } from "../src/domain/ApiKey.ts"
import { sqlFailuresAsDefects } from "./SqlFailures.ts"
import { decodeRows } from "./SqlRows.ts"

const markedRows = decodeRows(Schema.Struct({ endpoints_disabled: Schema.Int, notified: Schema.Int }))

/**
 * One statement marks the tenant deleted, disables its endpoints (the worker claims nothing for a disabled endpoint;
 * a send already in flight finishes) and tells every replica to drop its cached keys (NOTIFY, at commit); this
 * replica drops them once the statement has committed. From then on the key lookup refuses the tenant's keys.
 * No operational event is written: the tenant's own endpoints are the only ones that could receive it.
 */
export const TenantDeletionLive: Layer.Layer<TenantDeletion, never, SqlClient.SqlClient | ApiKeyAuth> = Layer.effect(
  TenantDeletion,
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const auth = yield* ApiKeyAuth
    return TenantDeletion.of({
      request: Effect.fn("TenantDeletion.request")(function* (id) {
        const [marked] = yield* markedRows(sql`
          WITH marked AS (
            UPDATE tenants SET deleted_at = coalesce(deleted_at, now()), updated_at = now()
            WHERE id = ${id}
            RETURNING id
          ), disabled AS (
            UPDATE endpoints e SET enabled = false, updated_at = now()
            FROM marked WHERE e.tenant_id = marked.id AND e.enabled
            RETURNING e.id
          ), notified AS (
            SELECT pg_notify(${apiKeysChannel}, marked.id) FROM marked
          )
          SELECT (SELECT count(*)::int FROM disabled) AS endpoints_disabled,
                 (SELECT count(*)::int FROM notified) AS notified
          FROM marked`)
        if (marked === undefined) return false
        yield* sql.afterCommit(auth.invalidateTenant(id))
        yield* Effect.logInfo("tenant deletion requested").pipe(
          Effect.annotateLogs({ tenantId: id, endpointsDisabled: marked.endpoints_disabled })
        )
        return true
      }, sqlFailuresAsDefects)
    })
  })
)
