import { Clock, Effect, Layer, Option, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { ApiKeyAuth } from "../services/ApiKeyAuth.ts"
import { EventTypeExists, type EventTypeFields, EventTypes } from "../services/EventTypes.ts"
import { apiKeysChannel } from "../src/domain/ApiKey.ts"
import type { Admission, CatalogEventType } from "../src/domain/EventTypeCatalog.ts"
import { EventTypeId, newId, type TenantId } from "../src/domain/Ids.ts"
import { sqlFailuresAsDefects } from "./SqlFailures.ts"
import { decodeRows, iso, isoOrNull, toPage } from "./SqlRows.ts"

/** `schema` and `examples` are `json` columns read as text (their member order kept), then parsed here. */
const TypeRow = Schema.Struct({
  id: EventTypeId,
  name: Schema.String,
  description: Schema.String,
  schema: Schema.NullOr(Schema.String),
  examples: Schema.String,
  deprecated_at: Schema.NullOr(Schema.Date),
  archived_at: Schema.NullOr(Schema.Date),
  created_at: Schema.Date,
  updated_at: Schema.Date
})
type TypeRow = typeof TypeRow.Type
const typeRows = decodeRows(TypeRow)

const typeColumns =
  "id, name, description, schema::text AS schema, examples::text AS examples, deprecated_at, archived_at, " +
  "created_at, updated_at"

const JsonObject = Schema.Record(Schema.String, Schema.Json)
const parseObject = Schema.decodeUnknownSync(Schema.fromJsonString(JsonObject))
const parseObjects = Schema.decodeUnknownSync(Schema.fromJsonString(Schema.Array(JsonObject)))

/** The columns hold what the API wrote (checked JSON objects): a row that does not parse is a defect. */
const toEventType = (row: TypeRow): CatalogEventType => ({
  id: row.id,
  name: row.name,
  description: row.description,
  schema: row.schema === null ? null : parseObject(row.schema),
  examples: parseObjects(row.examples),
  deprecated: row.deprecated_at !== null,
  deprecatedAt: isoOrNull(row.deprecated_at),
  archived: row.archived_at !== null,
  archivedAt: isoOrNull(row.archived_at),
  createdAt: iso(row.created_at),
  updatedAt: iso(row.updated_at)
})

const AdmissionRow = Schema.Struct({
  strict: Schema.Boolean,
  version: Schema.NullOr(Schema.String),
  deprecated_at: Schema.NullOr(Schema.Date),
  archived: Schema.NullOr(Schema.Boolean),
  has_schema: Schema.NullOr(Schema.Boolean),
  schema: Schema.NullOr(Schema.String)
})
const admissionRows = decodeRows(AdmissionRow)
const subscriptionRows = decodeRows(Schema.Struct({ strict: Schema.Boolean, names: Schema.Array(Schema.String) }))

const jsonOrNull = (value: unknown): string | null =>
  value === undefined || value === null ? null : JSON.stringify(value)

/**
 * How long a publish admission (the tenant's strict flag, the type's version and flags) is reused without asking the
 * database. A change reaches the cache at once (the catalog's writes and the tenant's strict flag forget the tenant's
 * API keys, and these with them, here and on every replica by NOTIFY): this only bounds it while a notification
 * cannot arrive, as for the API keys.
 */
const admissionTtlMs = 5_000

/** How many admissions are kept (tenant and type; oldest out). */
const admissionCapacity = 10_000

interface CachedAdmission {
  readonly strict: boolean
  readonly entry: Admission["entry"]
  /** The invalidation epoch when its lookup started, and when it was read (ms). */
  readonly epoch: number
  readonly readAt: number
}

export const EventTypesLive: Layer.Layer<EventTypes, never, SqlClient.SqlClient | ApiKeyAuth> = Layer.effect(
  EventTypes,
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const auth = yield* ApiKeyAuth
    /**
     * Whether the tenant has types is cached with its API keys (ApiKeyOwner.catalogInUse: publishing skips the catalog
     * lookup without). Adding or removing a type forgets them, as a revocation does: here once committed, and on every
     * other replica by the NOTIFY on the API keys' channel (transactional: sent on commit).
     */
    const forgetKeys = (tenantId: TenantId) =>
      Effect.andThen(
        sql`SELECT pg_notify(${apiKeysChannel}, ${tenantId}::text)`,
        sql.afterCommit(auth.invalidateTenant(tenantId))
      )

    /** A flag's timestamp column: set now when turned on (kept when already on), cleared when off, else kept. */
    const flag = (column: string, value: boolean | undefined) =>
      value === undefined
        ? sql.literal(column)
        : value
          ? sql`coalesce(${sql.literal(column)}, now())`
          : sql`NULL::timestamptz`

    /**
     * One statement: the tenant's row by its key, the type's by the unique (tenant_id, name) index. The version is the
     * entry's id and update time in microseconds, so a type deleted and created again is a new version too. The schema
     * text comes only when the caller does not have that version.
     */
    const lookupAdmission = (tenantId: TenantId, type: string, knownVersion: string | undefined) =>
      Effect.gen(function* () {
        const [row] = yield* admissionRows(sql`
          SELECT t.strict_event_types AS strict, v.version, et.deprecated_at, et.archived_at IS NOT NULL AS archived,
                 et.schema IS NOT NULL AS has_schema,
                 CASE WHEN v.version IS DISTINCT FROM ${knownVersion ?? null}::text THEN et.schema::text END AS schema
          FROM tenants t
          LEFT JOIN event_types et ON et.tenant_id = t.id AND et.name = ${type}
          CROSS JOIN LATERAL (
            SELECT et.id || ':' || floor(extract(epoch FROM et.updated_at) * 1000000)::bigint::text AS version
          ) v
          WHERE t.id = ${tenantId}`)
        if (row === undefined) return { strict: false, entry: undefined, schemaText: undefined }
        return {
          strict: row.strict,
          entry:
            row.version === null
              ? undefined
              : {
                  version: row.version,
                  deprecatedAt: row.deprecated_at,
                  archived: row.archived === true,
                  hasSchema: row.has_schema === true
                },
          schemaText: row.schema ?? undefined
        }
      }).pipe(sqlFailuresAsDefects)
    const admissions = new Map<string, CachedAdmission>()

    return EventTypes.of({
      create: Effect.fn("EventTypes.create")(function* (tenantId, name, fields) {
        const id = yield* newId("ety")
        const [row] = yield* typeRows(sql`
          INSERT INTO event_types (id, tenant_id, name, description, schema, examples, deprecated_at, archived_at)
          VALUES (${id}, ${tenantId}, ${name}, ${fields.description ?? ""}, ${jsonOrNull(fields.schema)}::json,
                  ${JSON.stringify(fields.examples ?? [])}::json,
                  CASE WHEN ${fields.deprecated === true}::boolean THEN now() END,
                  CASE WHEN ${fields.archived === true}::boolean THEN now() END)
          ON CONFLICT (tenant_id, name) DO NOTHING
          RETURNING ${sql.literal(typeColumns)}`)
        if (row === undefined) return yield* new EventTypeExists({ name })
        yield* forgetKeys(tenantId)
        return toEventType(row)
      }, sqlFailuresAsDefects),

      list: Effect.fn("EventTypes.list")(function* (tenantId, page) {
        const before = Option.match(page.before, { onNone: () => sql``, onSome: (id) => sql`AND id < ${id}` })
        const rows = yield* typeRows(sql`
          SELECT ${sql.literal(typeColumns)} FROM event_types WHERE tenant_id = ${tenantId} ${before}
          ORDER BY id DESC LIMIT ${page.limit + 1}`)
        return toPage(rows, page.limit, toEventType)
      }, sqlFailuresAsDefects),

      all: Effect.fn("EventTypes.all")(function* (tenantId) {
        const rows = yield* typeRows(sql`
          SELECT ${sql.literal(typeColumns)} FROM event_types WHERE tenant_id = ${tenantId} ORDER BY name`)
        return rows.map(toEventType)
      }, sqlFailuresAsDefects),

      get: Effect.fn("EventTypes.get")(function* (tenantId, name) {
        const [row] = yield* typeRows(sql`
          SELECT ${sql.literal(typeColumns)} FROM event_types WHERE tenant_id = ${tenantId} AND name = ${name}`)
        return Option.map(Option.fromNullishOr(row), toEventType)
      }, sqlFailuresAsDefects),

      update: Effect.fn("EventTypes.update")(function* (tenantId, name, fields: EventTypeFields) {
        const setSchema = fields.schema !== undefined
        const [row] = yield* typeRows(sql`
          UPDATE event_types SET
            description = coalesce(${fields.description ?? null}::text, description),
            schema = CASE WHEN ${setSchema}::boolean THEN ${jsonOrNull(fields.schema)}::json ELSE schema END,
            examples = coalesce(${jsonOrNull(fields.examples)}::json, examples),
            deprecated_at = ${flag("deprecated_at", fields.deprecated)},
            archived_at = ${flag("archived_at", fields.archived)},
            updated_at = clock_timestamp()
          WHERE tenant_id = ${tenantId} AND name = ${name}
          RETURNING ${sql.literal(typeColumns)}`)
        // Publishing admissions cached on every replica must see the change (its schema, its flags).
        if (row !== undefined) yield* forgetKeys(tenantId)
        return Option.map(Option.fromNullishOr(row), toEventType)
      }, sqlFailuresAsDefects),

      delete: Effect.fn("EventTypes.delete")(function* (tenantId, name) {
        const rows = yield* sql`DELETE FROM event_types WHERE tenant_id = ${tenantId} AND name = ${name} RETURNING id`
        if (rows.length === 0) return false
        yield* forgetKeys(tenantId)
        return true
      }, sqlFailuresAsDefects),

      /** The cached admission while fresh and sufficient (see admissionTtlMs), else `lookupAdmission`. */
      admission: Effect.fn("EventTypes.admission")(function* (tenantId, type, knownVersion) {
        const key = `${tenantId} ${type}`
        const now = yield* Clock.currentTimeMillis
        const cached = admissions.get(key)
        // Reused while fresh, unless the caller needs the schema text of a version it does not have.
        if (
          cached !== undefined &&
          now - cached.readAt < admissionTtlMs &&
          !auth.changes.isStale(tenantId, cached.epoch) &&
          (cached.entry === undefined || !cached.entry.hasSchema || cached.entry.version === knownVersion)
        ) {
          return { strict: cached.strict, entry: cached.entry, schemaText: undefined }
        }
        const epoch = auth.changes.epoch()
        const looked = yield* lookupAdmission(tenantId, type, knownVersion)
        admissions.delete(key)
        admissions.set(key, { strict: looked.strict, entry: looked.entry, epoch, readAt: now })
        if (admissions.size > admissionCapacity) {
          const oldest = admissions.keys().next()
          if (oldest.done !== true) admissions.delete(oldest.value)
        }
        return looked
      }),

      subscriptions: Effect.fn("EventTypes.subscriptions")(function* (tenantId) {
        const [row] = yield* subscriptionRows(sql`
          SELECT t.strict_event_types AS strict,
                 CASE WHEN t.strict_event_types THEN
                   coalesce((SELECT array_agg(name ORDER BY name) FROM event_types
                             WHERE tenant_id = t.id AND archived_at IS NULL), '{}')
                 ELSE '{}' END AS names
          FROM tenants t WHERE t.id = ${tenantId}`)
        return row ?? { strict: false, names: [] }
      }, sqlFailuresAsDefects)
    })
  })
)
