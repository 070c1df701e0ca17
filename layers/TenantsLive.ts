import { Effect, Layer, Option, Redacted, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { TenantDeleting, Tenants } from "../services/Tenants.ts"
import { apiKeysChannel, issueApiKey } from "../src/domain/ApiKey.ts"
import { ApiKeyId, newId, TenantId } from "../src/domain/Ids.ts"
import type { ApiKeySummary, IssuedApiKey, Tenant, TenantRateLimit } from "../src/domain/Tenant.ts"
import { sqlFailuresAsDefects } from "./SqlFailures.ts"
import { decodeRows, iso, isoOrNull, toPage } from "./SqlRows.ts"

/** A tenant row, decoded (see `decodeRows`): the rate-limit override is two nullable columns. */
const TenantRow = Schema.Struct({
  id: TenantId,
  name: Schema.String,
  rate_limit_max: Schema.NullOr(Schema.Number),
  rate_limit_window_seconds: Schema.NullOr(Schema.Number),
  retention_seconds: Schema.NullOr(Schema.Int),
  strict_event_types: Schema.Boolean,
  deleted_at: Schema.NullOr(Schema.Date),
  events_removed: Schema.Number,
  created_at: Schema.Date
})
type TenantRow = typeof TenantRow.Type

const tenantColumns =
  "id, name, rate_limit_max, rate_limit_window_seconds, retention_seconds, strict_event_types, deleted_at, " +
  "deletion_events_removed::float8 AS events_removed, created_at"

/** How far `eventsRemaining` counts: an index-only scan of at most this many entries. */
const remainingCountCap = 100_000

const KeyRow = Schema.Struct({
  id: ApiKeyId,
  key_prefix: Schema.String,
  created_at: Schema.Date,
  revoked_at: Schema.NullOr(Schema.Date)
})
type KeyRow = typeof KeyRow.Type

const CreatedRow = Schema.Struct({ created_at: Schema.Date })

const tenantRows = decodeRows(TenantRow)
const keyRows = decodeRows(KeyRow)
const createdRows = decodeRows(CreatedRow)
const countRows = decodeRows(Schema.Struct({ n: Schema.Int }))

const toTenant = (row: TenantRow): Tenant => ({
  id: row.id,
  name: row.name,
  rateLimit:
    row.rate_limit_max === null || row.rate_limit_window_seconds === null
      ? null
      : { limit: row.rate_limit_max, windowSeconds: row.rate_limit_window_seconds },
  retentionSeconds: row.retention_seconds,
  strictEventTypes: row.strict_event_types,
  status: row.deleted_at === null ? "active" : "deleting",
  createdAt: iso(row.created_at)
})

const toKeySummary = (row: KeyRow): ApiKeySummary => ({
  id: row.id,
  prefix: row.key_prefix,
  createdAt: iso(row.created_at),
  revokedAt: isoOrNull(row.revoked_at)
})

export const TenantsLive: Layer.Layer<Tenants, never, SqlClient.SqlClient> = Layer.effect(
  Tenants,
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient

    /** A write found no active tenant: None when there is none at all, TenantDeleting when it is being deleted. */
    const absentOrDeleting = (id: TenantId) =>
      Effect.flatMap(countRows(sql`SELECT count(*)::int AS n FROM tenants WHERE id = ${id}`), ([row]) =>
        (row?.n ?? 0) > 0 ? Effect.fail(new TenantDeleting({ tenantId: id })) : Effect.succeedNone
      )

    /** Inserts a key for `tenantId` if that tenant exists (one statement, no check-then-insert). */
    const insertKey = (tenantId: string) =>
      Effect.gen(function* () {
        const id = yield* newId("key")
        const key = yield* issueApiKey
        const rows = yield* createdRows(sql`
          INSERT INTO api_keys (id, tenant_id, key_hash, key_prefix)
          SELECT ${id}, t.id, ${key.hash}, ${key.prefix} FROM tenants t
          WHERE t.id = ${tenantId} AND t.deleted_at IS NULL
          RETURNING created_at`)
        const [row] = rows
        return row === undefined
          ? Option.none<IssuedApiKey>()
          : Option.some({
              id: id as ApiKeyId,
              key: Redacted.value(key.secret),
              prefix: key.prefix,
              createdAt: iso(row.created_at)
            })
      })

    return Tenants.of({
      create: Effect.fn("Tenants.create")(function* (input) {
        const rateLimit: TenantRateLimit | null = input.rateLimit ?? null
        // A transaction holds a pooled connection: SQL only inside, never a network wait (DNS, HTTP, Redis).
        return yield* sql.withTransaction(
          Effect.gen(function* () {
            const id = yield* newId("ten")
            const [row] = yield* tenantRows(sql`
              INSERT INTO tenants (id, name, rate_limit_max, rate_limit_window_seconds, retention_seconds,
                                   strict_event_types)
              VALUES (${id}, ${input.name}, ${rateLimit?.limit ?? null}, ${rateLimit?.windowSeconds ?? null},
                      ${input.retentionSeconds ?? null}, ${input.strictEventTypes ?? false})
              RETURNING ${sql.literal(tenantColumns)}`)
            if (row === undefined) return yield* Effect.die(new Error("INSERT ... RETURNING returned no row"))
            const apiKey = yield* insertKey(id)
            if (Option.isNone(apiKey)) return yield* Effect.die(new Error("the new tenant vanished"))
            return { tenant: toTenant(row), apiKey: apiKey.value }
          })
        )
      }, sqlFailuresAsDefects),

      list: Effect.fn("Tenants.list")(function* (page) {
        const before = Option.match(page.before, { onNone: () => sql``, onSome: (id) => sql`WHERE id < ${id}` })
        const rows = yield* tenantRows(sql`
          SELECT ${sql.literal(tenantColumns)} FROM tenants ${before} ORDER BY id DESC LIMIT ${page.limit + 1}`)
        return toPage(rows, page.limit, toTenant)
      }, sqlFailuresAsDefects),

      get: Effect.fn("Tenants.get")(function* (id) {
        const [tenant] = yield* tenantRows(sql`SELECT ${sql.literal(tenantColumns)} FROM tenants WHERE id = ${id}`)
        if (tenant === undefined) return Option.none()
        const keys = yield* keyRows(sql`
          SELECT id, key_prefix, created_at, revoked_at FROM api_keys WHERE tenant_id = ${id} ORDER BY id`)
        if (tenant.deleted_at === null) {
          return Option.some({ ...toTenant(tenant), apiKeys: keys.map(toKeySummary), deletion: null })
        }
        const [remaining] = yield* countRows(sql`
          SELECT count(*)::int AS n FROM (SELECT 1 FROM events WHERE tenant_id = ${id} LIMIT ${remainingCountCap}) r`)
        return Option.some({
          ...toTenant(tenant),
          apiKeys: keys.map(toKeySummary),
          deletion: {
            requestedAt: iso(tenant.deleted_at),
            eventsRemoved: tenant.events_removed,
            eventsRemaining: remaining?.n ?? 0
          }
        })
      }, sqlFailuresAsDefects),

      update: Effect.fn("Tenants.update")(function* (id, patch) {
        // One statement; absent fields keep their value (`rateLimit: null` clears the override).
        const setRateLimit = patch.rateLimit !== undefined
        // Strict mode is cached with the tenant's API keys (ApiKeyOwner.catalogInUse): changing it makes every replica
        // LISTENing on their channel forget them (on commit); AdminHttp forgets them on this one.
        const [row] = yield* tenantRows(sql`
          WITH updated AS (
          UPDATE tenants SET
            name = coalesce(${patch.name ?? null}::text, name),
            rate_limit_max = CASE WHEN ${setRateLimit}::boolean THEN ${patch.rateLimit?.limit ?? null}::int
              ELSE rate_limit_max END,
            rate_limit_window_seconds = CASE WHEN ${setRateLimit}::boolean
              THEN ${patch.rateLimit?.windowSeconds ?? null}::int ELSE rate_limit_window_seconds END,
            retention_seconds = CASE WHEN ${patch.retentionSeconds !== undefined}::boolean
              THEN ${patch.retentionSeconds ?? null}::int ELSE retention_seconds END,
            strict_event_types = coalesce(${patch.strictEventTypes ?? null}::boolean, strict_event_types),
            updated_at = now()
          WHERE id = ${id} AND deleted_at IS NULL
          RETURNING ${sql.literal(tenantColumns)}
          ), notified AS (
            SELECT pg_notify(${apiKeysChannel}, updated.id) FROM updated
            WHERE ${patch.strictEventTypes !== undefined}::boolean
          )
          SELECT updated.*, (SELECT count(*)::int FROM notified) AS notified FROM updated`)
        if (row === undefined) return yield* absentOrDeleting(id)
        return Option.some(toTenant(row))
      }, sqlFailuresAsDefects),

      issueApiKey: Effect.fn("Tenants.issueApiKey")(function* (tenantId) {
        const key = yield* insertKey(tenantId)
        return Option.isSome(key) ? key : yield* absentOrDeleting(tenantId)
      }, sqlFailuresAsDefects)
    })
  })
)
