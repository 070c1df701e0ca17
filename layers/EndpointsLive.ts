import { Duration, Effect, Layer, Option, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { DeliveryWakeups } from "../services/DeliveryWakeups.ts"
import { EndpointCircuits } from "../services/EndpointCircuits.ts"
import { Endpoints } from "../services/Endpoints.ts"
import { SecretBox, SecretContext } from "../services/SecretBox.ts"
import { deletedEndpointError, deliveryChannel, disabledEndpointError } from "../src/domain/Delivery.ts"
import type { Endpoint, EndpointRecord } from "../src/domain/Endpoint.ts"
import { maskedHeaders } from "../src/domain/EndpointHeaders.ts"
import { compileFilter } from "../src/domain/EventFilter.ts"
import { EndpointId, newId, type TenantId } from "../src/domain/Ids.ts"
import {
  EndpointCreated,
  EndpointDeleted,
  EndpointDisabled,
  EndpointEnabled,
  EndpointUpdated
} from "../src/domain/OperationalEvents.ts"
import { maskUrlPassword } from "../src/domain/UrlCredentials.ts"
import { newWebhookSecret, secretRotationOverlap } from "../src/domain/WebhookSecret.ts"
import { operationalEventCtes, operationalQueued } from "./OperationalEventsSql.ts"
import { sqlFailuresAsDefects } from "./SqlFailures.ts"
import { decodeRows, iso, toPage } from "./SqlRows.ts"

/**
 * An endpoint row, decoded rather than cast: the driver hands back whatever the table holds (a `text[]`, a `jsonb`
 * object, nullable columns), and a migration that changes one must fail here, in tests, not flow on as a wrong type.
 */
const EndpointRow = Schema.Struct({
  id: EndpointId,
  url: Schema.String,
  description: Schema.String,
  event_types: Schema.Array(Schema.String),
  enabled: Schema.Boolean,
  metadata: Schema.Record(Schema.String, Schema.String),
  header_names: Schema.Array(Schema.String),
  filter: Schema.NullOr(Schema.Record(Schema.String, Schema.Json)),
  rate_limit: Schema.NullOr(Schema.Int),
  created_at: Schema.Date,
  updated_at: Schema.Date
})
type EndpointRow = typeof EndpointRow.Type

const SecretRow = Schema.Struct({
  /** NULL only once the endpoint is deleted (never read here: every read skips deleted endpoints). */
  secret: Schema.NullOr(Schema.String),
  previous_secret: Schema.NullOr(Schema.String),
  previous_secret_expires_at: Schema.NullOr(Schema.Date)
})
type SecretRow = typeof SecretRow.Type

/** A write's row: with the deliveries its operational events queued (see OperationalEventsSql). */
const WrittenRow = Schema.Struct({ ...EndpointRow.fields, operational_queued: Schema.Int })
const UpdatedRow = Schema.Struct({ ...WrittenRow.fields, cancelled: Schema.Int, resumed: Schema.Int })
const DeletedRow = Schema.Struct({ cancelled: Schema.Int, operational_queued: Schema.Int })

const endpointRows = decodeRows(EndpointRow)
const writtenRows = decodeRows(WrittenRow)
const updatedRows = decodeRows(UpdatedRow)
const deletedRows = decodeRows(DeletedRow)
const secretRows = decodeRows(SecretRow)

const columns =
  "id, url, description, event_types, enabled, metadata, header_names, filter, rate_limit, created_at, updated_at"

/** The data of `codex.endpoint.created` and `.updated` (EndpointStateData), from the written row `alias`. */
const stateOf = (alias: "c" | "u") =>
  `json_build_object('endpointId', ${alias}.id, 'description', ${alias}.description, ` +
  `'eventTypes', to_json(${alias}.event_types), 'enabled', ${alias}.enabled)`

const toEndpoint = (row: EndpointRow): EndpointRecord => ({
  id: row.id,
  // Shown without its password (if it has one): the stored URL keeps it for the deliveries.
  url: maskUrlPassword(row.url),
  description: row.description,
  eventTypes: row.event_types,
  enabled: row.enabled,
  metadata: row.metadata,
  // Names only: the values (possibly credentials) are stored sealed and never shown back.
  headers: maskedHeaders(row.header_names),
  filter: row.filter,
  rateLimit: row.rate_limit,
  createdAt: iso(row.created_at),
  updatedAt: iso(row.updated_at)
})

/** The previous secret while its rotation overlap lasts (past its expiry it is no longer reported nor used to sign). */
const livePrevious = (
  row: SecretRow,
  now: number
): { readonly sealed: string; readonly expiresAt: Date } | undefined =>
  row.previous_secret !== null &&
  row.previous_secret_expires_at !== null &&
  row.previous_secret_expires_at.getTime() > now
    ? { sealed: row.previous_secret, expiresAt: row.previous_secret_expires_at }
    : undefined

/**
 * Endpoints in PostgreSQL, each shown with the health of its circuit (the delivery worker's breaker, read from the
 * circuits' store: this process's memory, or Redis shared by every replica). Signing secrets are stored sealed
 * (SecretBox, context `endpoints.secret:<endpoint id>` for the current and the previous secret alike) and opened here.
 */
type Dependencies = SqlClient.SqlClient | EndpointCircuits | SecretBox | DeliveryWakeups

export const EndpointsLive: Layer.Layer<Endpoints, never, Dependencies> = Layer.effect(
  Endpoints,
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const circuits = yield* EndpointCircuits
    const box = yield* SecretBox
    const wakeups = yield* DeliveryWakeups
    /** This process's worker, for the deliveries a write's operational events queued (NOTIFY wakes the others). */
    const wakeFor = (row: { readonly operational_queued: number } | undefined) =>
      row !== undefined && row.operational_queued > 0 ? wakeups.queued : Effect.void
    const withHealth = (endpoint: EndpointRecord): Effect.Effect<Endpoint> =>
      Effect.map(circuits.health(endpoint.id), (health) => ({
        ...endpoint,
        health: { circuit: health.circuit, openUntil: health.openUntil === null ? null : iso(health.openUntil) }
      }))
    const oneWithHealth = (row: EndpointRow | undefined) =>
      row === undefined ? Effect.succeed(Option.none<Endpoint>()) : Effect.map(withHealth(toEndpoint(row)), Option.some)
    /**
     * A previous secret that does not open (sealed under a key no longer configured) is treated as absent: it cannot
     * sign, and the current secret still does. Logged, without the value.
     */
    const openPrevious = (sealed: string, context: SecretContext, during: "read" | "rotate") =>
      box
        .open(sealed, context)
        .pipe(
          Effect.catchTag("SecretUnreadable", (error) =>
            Effect.logWarning("endpoint: the previous signing secret cannot be opened; treated as absent").pipe(
              Effect.annotateLogs({ during, reason: error.reason, keyId: error.keyId, context: error.context }),
              Effect.as(null)
            )
          )
        )
    /** Custom headers as stored: sealed as one JSON object (NULL for none), and their names in the clear. */
    const sealHeaders = (id: string, headers: Readonly<Record<string, string>>) =>
      Object.keys(headers).length === 0
        ? Effect.succeed({ sealed: null, names: [] })
        : Effect.map(box.seal(JSON.stringify(headers), SecretContext.endpointHeaders(id)), (sealed) => ({
            sealed,
            names: Object.keys(headers)
          }))
    /**
     * A filter as stored: the document and its compiled path (both NULL for none). The handler judged it already
     * (422): one that does not compile here is a bug.
     */
    const compiledFilter = (filter: Readonly<Record<string, Schema.Json>> | null) => {
      if (filter === null) return Effect.succeed({ document: null, path: null })
      const compiled = compileFilter(filter)
      return compiled._tag === "Compiled"
        ? Effect.succeed({ document: JSON.stringify(filter), path: compiled.jsonPath })
        : Effect.die(
            new Error(`an endpoint filter that does not compile reached the repository: ${compiled.problem.message}`)
          )
    }
    const select = sql.unsafe(columns)
    /** The tenant's endpoint, unless deleted: a deleted endpoint is absent from every read and write here. */
    const live = (tenantId: TenantId, id: EndpointId) =>
      sql`tenant_id = ${tenantId} AND id = ${id} AND deleted_at IS NULL`
    /** A text[] parameter, passed as JSON: the driver has no array encoder. */
    const textArray = (items: ReadonlyArray<string>) =>
      sql`ARRAY(SELECT jsonb_array_elements_text(${JSON.stringify(items)}::jsonb))`

    return Endpoints.of({
      create: Effect.fn("Endpoints.create")(function* (tenantId, input) {
        const id = yield* newId("ep")
        const secret = yield* box.seal(yield* newWebhookSecret, SecretContext.endpointSecret(id))
        const headers = yield* sealHeaders(id, input.headers ?? {})
        const filter = yield* compiledFilter(input.filter ?? null)
        const [row] = yield* writtenRows(sql`
          WITH created AS (
            INSERT INTO endpoints (id, tenant_id, url, description, event_types, enabled, metadata, secret, headers,
                                   header_names, filter, filter_path, rate_limit)
            VALUES (${id}, ${tenantId}, ${input.url}, ${input.description ?? ""},
                    ${textArray(input.eventTypes ?? [])}, ${input.enabled ?? true},
                    ${JSON.stringify(input.metadata ?? {})}::jsonb, ${secret}, ${headers.sealed},
                    ${textArray(headers.names)}, ${filter.document}::jsonb, ${filter.path}::jsonpath,
                    ${input.rateLimit ?? null}::int)
            RETURNING ${select}
          ), ${operationalEventCtes(
            sql,
            sql`SELECT ${tenantId}::text AS tenant_id, ${EndpointCreated}::text AS type, ${sql.unsafe(stateOf("c"))} AS data,
                       c.id AS about_endpoint
                FROM created c`
          )}
          SELECT created.*, ${operationalQueued(sql)} AS operational_queued FROM created`)
        if (row === undefined) return yield* Effect.die(new Error("INSERT ... RETURNING returned no row"))
        yield* wakeFor(row)
        // A new endpoint has no circuit yet: no store to ask (this may run inside a transaction).
        return { ...toEndpoint(row), health: { circuit: "closed" as const, openUntil: null } }
      }, sqlFailuresAsDefects),

      list: Effect.fn("Endpoints.list")(function* (tenantId, page) {
        const before = Option.match(page.before, { onNone: () => sql``, onSome: (id) => sql`AND id < ${id}` })
        const rows = yield* endpointRows(sql`
          SELECT ${select} FROM endpoints WHERE tenant_id = ${tenantId} AND deleted_at IS NULL ${before}
          ORDER BY id DESC LIMIT ${page.limit + 1}`)
        const stored = toPage(rows, page.limit, toEndpoint)
        const items = yield* Effect.forEach(stored.items, withHealth, { concurrency: 8 })
        return { ...stored, items }
      }, sqlFailuresAsDefects),

      get: Effect.fn("Endpoints.get")(function* (tenantId, id) {
        const [row] = yield* endpointRows(sql`
          SELECT ${select} FROM endpoints WHERE ${live(tenantId, id)}`)
        return yield* oneWithHealth(row)
      }, sqlFailuresAsDefects),

      update: Effect.fn("Endpoints.update")(function* (tenantId, id, patch) {
        const headers = patch.headers === undefined ? undefined : yield* sealHeaders(id, patch.headers)
        const filter = patch.filter === undefined ? undefined : yield* compiledFilter(patch.filter)
        // COALESCE keeps what the patch leaves out; one statement, scoped by tenant. Disabled, the endpoint receives
        // nothing more: what was still to be sent is cancelled in the same statement, however long its backlog (a
        // delivery in flight is cancelled too; its worker records the attempt and leaves it cancelled). Enabling it
        // again does not bring them back: `recover` re-queues failed deliveries, and new events are sent as usual.
        const [row] = yield* updatedRows(sql`
          WITH before AS (
            -- The row as this statement's snapshot has it (no FOR UPDATE: a row the same statement updates would be
            -- skipped). Two PATCHes racing to flip enabled may then both report the flip.
            SELECT id, enabled FROM endpoints WHERE ${live(tenantId, id)}
          ), updated AS (
            UPDATE endpoints SET
              url = COALESCE(${patch.url ?? null}::text, url),
              description = COALESCE(${patch.description ?? null}::text, description),
              event_types = ${patch.eventTypes === undefined ? sql`event_types` : textArray(patch.eventTypes)},
              enabled = COALESCE(${patch.enabled ?? null}::boolean, enabled),
              -- Enabled again: a failing streak restarts now (ENDPOINT_DISABLE_AFTER counts anew; a success still
              -- reports the recovery).
              failing_since = CASE WHEN ${patch.enabled === true}::boolean AND NOT enabled AND failing_since IS NOT NULL
                                   THEN now() ELSE failing_since END,
              metadata = COALESCE(${patch.metadata === undefined ? null : JSON.stringify(patch.metadata)}::jsonb, metadata),
              headers = ${headers === undefined ? sql`headers` : sql`${headers.sealed}`},
              header_names = ${headers === undefined ? sql`header_names` : textArray(headers.names)},
              filter = ${filter === undefined ? sql`filter` : sql`${filter.document}::jsonb`},
              filter_path = ${filter === undefined ? sql`filter_path` : sql`${filter.path}::jsonpath`},
              rate_limit = ${patch.rateLimit === undefined ? sql`rate_limit` : sql`${patch.rateLimit}::int`},
              updated_at = now()
            WHERE ${live(tenantId, id)}
            RETURNING ${select}
          ), cancelled AS (
            UPDATE deliveries d SET status = 'cancelled', locked_until = NULL, locked_by = NULL,
              last_error = ${disabledEndpointError}, updated_at = now()
            FROM updated JOIN before ON before.id = updated.id
            -- Only when this PATCH disables it: an endpoint disabled for failing keeps its waiting deliveries through
            -- any other change.
            WHERE d.endpoint_id = updated.id AND before.enabled AND NOT updated.enabled AND d.status = 'pending'
            RETURNING d.id
          ), ${operationalEventCtes(
            sql,
            sql`SELECT ${tenantId}::text AS tenant_id, ${EndpointUpdated}::text AS type, ${sql.unsafe(stateOf("u"))} AS data,
                       u.id AS about_endpoint
                FROM updated u
                UNION ALL
                SELECT ${tenantId}::text, CASE WHEN u.enabled THEN ${EndpointEnabled} ELSE ${EndpointDisabled} END,
                       CASE WHEN u.enabled THEN json_build_object('endpointId', u.id)
                            ELSE json_build_object('endpointId', u.id, 'reason', 'manual') END,
                       u.id
                FROM updated u JOIN before b ON b.id = u.id
                WHERE u.enabled <> b.enabled`
          )}, resumed AS (
            -- Enabled again: its deliveries that waited (disabled for failing) are due; wake the workers.
            SELECT pg_notify(${deliveryChannel}, '') FROM updated u JOIN before b ON b.id = u.id
            WHERE u.enabled AND NOT b.enabled
          )
          SELECT updated.*, (SELECT count(*)::int FROM cancelled) AS cancelled,
                 ${operationalQueued(sql)} AS operational_queued, (SELECT count(*)::int FROM resumed) AS resumed
          FROM updated`)
        yield* wakeFor(row)
        if (row !== undefined && row.resumed > 0) yield* wakeups.queued
        if (row !== undefined && row.cancelled > 0) {
          yield* Effect.logInfo("endpoint disabled: its pending deliveries are cancelled").pipe(
            Effect.annotateLogs({ endpointId: id, deliveriesCancelled: row.cancelled })
          )
        }
        return Option.map(Option.fromNullishOr(row), toEndpoint)
      }, sqlFailuresAsDefects),

      delete: Effect.fn("Endpoints.delete")(function* (tenantId, id) {
        // One statement, so both happen or neither: the row stays (its deliveries and attempts are history) without
        // its secrets, and what was still to be sent is cancelled. A delivery being sent right now is cancelled too,
        // its lease cleared: its worker records the attempt and leaves it cancelled (DeliveryWorkerLive `finish`).
        // A publish that read the endpoint before this committed may still queue one more delivery: the worker's
        // claim cancels it.
        const [row] = yield* deletedRows(sql`
          WITH deleted AS (
            UPDATE endpoints SET deleted_at = now(), secret = NULL, previous_secret = NULL, headers = NULL,
              previous_secret_expires_at = NULL, updated_at = now()
            WHERE ${live(tenantId, id)}
            RETURNING id
          ), cancelled AS (
            UPDATE deliveries d SET status = 'cancelled', locked_until = NULL, locked_by = NULL,
              last_error = ${deletedEndpointError}, updated_at = now()
            FROM deleted WHERE d.endpoint_id = deleted.id AND d.status = 'pending'
            RETURNING d.id
          ), ${operationalEventCtes(
            sql,
            sql`SELECT ${tenantId}::text AS tenant_id, ${EndpointDeleted}::text AS type,
                       json_build_object('endpointId', d.id) AS data, d.id AS about_endpoint
                FROM deleted d`
          )}
          SELECT (SELECT count(*)::int FROM cancelled) AS cancelled, ${operationalQueued(sql)} AS operational_queued
          FROM deleted`)
        if (row === undefined) return false
        yield* wakeFor(row)
        yield* Effect.logInfo("endpoint deleted").pipe(
          Effect.annotateLogs({ endpointId: id, deliveriesCancelled: row.cancelled })
        )
        return true
      }, sqlFailuresAsDefects),

      getSecret: Effect.fn("Endpoints.getSecret")(function* (tenantId, id) {
        const [row] = yield* secretRows(sql`
          SELECT secret, previous_secret, previous_secret_expires_at
          FROM endpoints WHERE ${live(tenantId, id)}`)
        if (row === undefined || row.secret === null) return Option.none()
        const context = SecretContext.endpointSecret(id)
        // The current secret must open. When it does not (sealed under a key ENCRYPTION_KEYS no longer lists), no
        // delivery can be signed either: the operator's to fix (the server says so at start-up), so a defect (500).
        const secret = yield* box.open(row.secret, context).pipe(Effect.catchTag("SecretUnreadable", Effect.die))
        const previous = livePrevious(row, Date.now())
        const previousSecret = previous === undefined ? null : yield* openPrevious(previous.sealed, context, "read")
        return Option.some({
          secret,
          previousSecret,
          previousSecretExpiresAt: previous === undefined || previousSecret === null ? null : iso(previous.expiresAt)
        })
      }, sqlFailuresAsDefects),

      rotateSecret: Effect.fn("Endpoints.rotateSecret")(function* (tenantId, id) {
        const context = SecretContext.endpointSecret(id)
        const next = yield* newWebhookSecret
        const sealed = yield* box.seal(next, context)
        const overlapSeconds = Duration.toSeconds(secretRotationOverlap)
        // The current secret moves into previous_secret still sealed (both columns share the endpoint's context):
        // one statement, no read-modify-write, so concurrent rotations cannot interleave.
        const [row] = yield* secretRows(sql`
          UPDATE endpoints SET
            previous_secret = secret,
            previous_secret_expires_at = now() + make_interval(secs => ${overlapSeconds}),
            secret = ${sealed},
            updated_at = now()
          WHERE ${live(tenantId, id)}
          RETURNING secret, previous_secret, previous_secret_expires_at`)
        if (row === undefined || row.secret === null) return Option.none()
        const previous = livePrevious(row, Date.now())
        const previousSecret = previous === undefined ? null : yield* openPrevious(previous.sealed, context, "rotate")
        if (previous !== undefined && previousSecret === null) {
          // The old secret cannot be opened (a key no longer configured): it could never sign again, so it is
          // dropped, and rotating is how an endpoint gets a readable secret back.
          yield* sql`
            UPDATE endpoints SET previous_secret = NULL, previous_secret_expires_at = NULL
            WHERE id = ${id} AND previous_secret = ${previous.sealed}`
        }
        return Option.some({
          secret: next,
          previousSecret,
          previousSecretExpiresAt: previous === undefined || previousSecret === null ? null : iso(previous.expiresAt)
        })
      }, sqlFailuresAsDefects)
    })
  })
)
