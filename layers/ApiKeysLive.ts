import { Effect, Layer, Option, Redacted, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { ApiKeyAuth } from "../services/ApiKeyAuth.ts"
import { ApiKeys } from "../services/ApiKeys.ts"
import { apiKeysChannel, issueApiKey } from "../src/domain/ApiKey.ts"
import { type ApiKeyInfo, ApiKeyScope, type CreatedApiKey, type Revocation } from "../src/domain/ApiKeyInfo.ts"
import { ApiKeyId, newId, TenantId } from "../src/domain/Ids.ts"
import { sqlFailuresAsDefects } from "./SqlFailures.ts"
import { decodeRows, iso, isoOrNull, toPage } from "./SqlRows.ts"

const KeyRow = Schema.Struct({
  id: ApiKeyId,
  name: Schema.String,
  key_prefix: Schema.String,
  scope: ApiKeyScope,
  created_at: Schema.Date,
  last_used_at: Schema.NullOr(Schema.Date),
  expires_at: Schema.NullOr(Schema.Date),
  revoked_at: Schema.NullOr(Schema.Date)
})
type KeyRow = typeof KeyRow.Type

const keyColumns = "id, name, key_prefix, scope, created_at, last_used_at, expires_at, revoked_at"

const keyRows = decodeRows(KeyRow)
const createdRows = decodeRows(Schema.Struct({ created_at: Schema.Date, expires_at: Schema.NullOr(Schema.Date) }))
const revocationRows = decodeRows(Schema.Struct({ found: Schema.Int, revoked: Schema.Int, notified: Schema.Int }))
const revokedRows = decodeRows(Schema.Struct({ tenant_id: TenantId, notified: Schema.Int }))
const existsRows = decodeRows(Schema.Struct({ id: TenantId }))

const toInfo = (row: KeyRow): ApiKeyInfo => ({
  id: row.id,
  name: row.name,
  prefix: row.key_prefix,
  scope: row.scope,
  createdAt: iso(row.created_at),
  lastUsedAt: isoOrNull(row.last_used_at),
  expiresAt: isoOrNull(row.expires_at),
  revokedAt: isoOrNull(row.revoked_at)
})

/** A live key: not revoked, not expired (by the database's clock). */
const live = "revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"

export const ApiKeysLive: Layer.Layer<ApiKeys, never, SqlClient.SqlClient | ApiKeyAuth> = Layer.effect(
  ApiKeys,
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const auth = yield* ApiKeyAuth
    // This replica forgets the tenant's cached keys once the revocation commits; the NOTIFY in the same statement
    // tells the others.
    const invalidated = (tenantId: TenantId) => sql.afterCommit(auth.invalidateTenant(tenantId))

    return ApiKeys.of({
      create: Effect.fn("ApiKeys.create")(function* (tenantId, input) {
        const id = yield* newId("key")
        const key = yield* issueApiKey
        const [row] = yield* createdRows(sql`
          INSERT INTO api_keys (id, tenant_id, key_hash, key_prefix, name, scope, expires_at)
          SELECT ${id}, t.id, ${key.hash}, ${key.prefix}, ${input.name}, ${input.scope},
                 ${input.expiresAt?.toISOString() ?? null}::timestamptz
          FROM tenants t WHERE t.id = ${tenantId}
          RETURNING created_at, expires_at`)
        return Option.map(
          Option.fromNullishOr(row),
          (created): CreatedApiKey => ({
            id: id as ApiKeyId,
            key: Redacted.value(key.secret),
            name: input.name,
            prefix: key.prefix,
            scope: input.scope,
            createdAt: iso(created.created_at),
            expiresAt: isoOrNull(created.expires_at)
          })
        )
      }, sqlFailuresAsDefects),

      list: Effect.fn("ApiKeys.list")(function* (tenantId, page) {
        const [tenant] = yield* existsRows(sql`SELECT id FROM tenants WHERE id = ${tenantId}`)
        if (tenant === undefined) return Option.none()
        const before = Option.match(page.before, { onNone: () => sql``, onSome: (id) => sql`AND id < ${id}` })
        const rows = yield* keyRows(sql`
          SELECT ${sql.literal(keyColumns)} FROM api_keys WHERE tenant_id = ${tenantId} ${before}
          ORDER BY id DESC LIMIT ${page.limit + 1}`)
        return Option.some(toPage(rows, page.limit, toInfo))
      }, sqlFailuresAsDefects),

      revoke: Effect.fn("ApiKeys.revoke")(function* (tenantId, id, confirmed) {
        return yield* sql.withTransaction(
          Effect.gen(function* () {
            // Revocations of one tenant's keys queue on its row; each then reads the keys in a statement of its own,
            // so it sees what the one before it committed (READ COMMITTED: a new snapshot per statement). Without the
            // lock two revocations of the last two full keys would each see the other still live.
            const [tenant] = yield* existsRows(sql`SELECT id FROM tenants WHERE id = ${tenantId} FOR UPDATE`)
            if (tenant === undefined) return "not-found" satisfies Revocation
            const [row] = yield* revocationRows(sql`
              WITH target AS (
                SELECT id, (scope = 'full' AND ${sql.literal(live)}) AS live_full
                FROM api_keys WHERE id = ${id} AND tenant_id = ${tenantId}
              ), allowed AS (
                SELECT target.id FROM target
                WHERE NOT target.live_full OR ${confirmed}::boolean OR EXISTS (
                  SELECT 1 FROM api_keys
                  WHERE tenant_id = ${tenantId} AND id <> ${id} AND scope = 'full' AND ${sql.literal(live)})
              ), revoked AS (
                UPDATE api_keys k SET revoked_at = coalesce(k.revoked_at, now())
                FROM allowed WHERE k.id = allowed.id
                RETURNING k.id
              ), notified AS (
                -- Every replica LISTENing on the channel forgets the tenant's cached keys once this commits.
                SELECT pg_notify(${apiKeysChannel}, ${tenantId}::text) FROM revoked
              )
              SELECT (SELECT count(*)::int FROM target) AS found, (SELECT count(*)::int FROM revoked) AS revoked,
                     (SELECT count(*)::int FROM notified) AS notified`)
            if (row === undefined || row.found === 0) return "not-found" satisfies Revocation
            if (row.revoked === 0) return "last-full-key" satisfies Revocation
            yield* invalidated(tenantId)
            return "revoked" satisfies Revocation
          })
        )
      }, sqlFailuresAsDefects),

      revokeAny: Effect.fn("ApiKeys.revokeAny")(function* (id) {
        const [row] = yield* revokedRows(sql`
          WITH revoked AS (
            UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = ${id} RETURNING tenant_id
          ), notified AS (
            SELECT pg_notify(${apiKeysChannel}, tenant_id) FROM revoked
          )
          SELECT tenant_id, (SELECT count(*)::int FROM notified) AS notified FROM revoked`)
        if (row === undefined) return false
        yield* invalidated(row.tenant_id)
        return true
      }, sqlFailuresAsDefects)
    })
  })
)
