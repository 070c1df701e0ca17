import { Duration, Effect, Layer, Option } from "effect"
import { SqlClient } from "effect/sql"
import { EndpointCircuits } from "../services/EndpointCircuits.ts"
import { Endpoints } from "../services/Endpoints.ts"
import type { Endpoint, EndpointRecord, EndpointSecret } from "../src/domain/Endpoint.ts"
import { type EndpointId, newId } from "../src/domain/Ids.ts"
import { newWebhookSecret, secretRotationOverlap } from "../src/domain/WebhookSecret.ts"
import { iso, isoOrNull, toPage } from "./SqlRows.ts"

interface EndpointRow {
  readonly id: EndpointId
  readonly url: string
  readonly description: string
  readonly event_types: ReadonlyArray<string>
  readonly enabled: boolean
  readonly metadata: Record<string, string>
  readonly created_at: Date
  readonly updated_at: Date
}

interface SecretRow {
  readonly secret: string
  readonly previous_secret: string | null
  readonly previous_secret_expires_at: Date | null
}

const columns = "id, url, description, event_types, enabled, metadata, created_at, updated_at"

const toEndpoint = (row: EndpointRow): EndpointRecord => ({
  id: row.id,
  url: row.url,
  description: row.description,
  eventTypes: row.event_types,
  enabled: row.enabled,
  metadata: row.metadata,
  createdAt: iso(row.created_at),
  updatedAt: iso(row.updated_at)
})

/** A previous secret past its expiry is no longer reported (nor, later, used to sign). */
const toSecret = (row: SecretRow, now: number): EndpointSecret => {
  const live =
    row.previous_secret !== null &&
    row.previous_secret_expires_at !== null &&
    row.previous_secret_expires_at.getTime() > now
  return {
    secret: row.secret,
    previousSecret: live ? row.previous_secret : null,
    previousSecretExpiresAt: live ? isoOrNull(row.previous_secret_expires_at) : null
  }
}

/**
 * Endpoints in PostgreSQL, each shown with the health of its circuit (the delivery worker's breaker, read from the
 * circuits' store: this process's memory, or Redis shared by every replica).
 */
export const EndpointsLive: Layer.Layer<Endpoints, never, SqlClient.SqlClient | EndpointCircuits> = Layer.effect(
  Endpoints,
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const circuits = yield* EndpointCircuits
    const withHealth = (endpoint: EndpointRecord): Effect.Effect<Endpoint> =>
      Effect.map(circuits.health(endpoint.id), (health) => ({
        ...endpoint,
        health: { circuit: health.circuit, openUntil: health.openUntil === null ? null : iso(health.openUntil) }
      }))
    const oneWithHealth = (row: EndpointRow | undefined) =>
      row === undefined ? Effect.succeed(Option.none<Endpoint>()) : Effect.map(withHealth(toEndpoint(row)), Option.some)
    const select = sql.unsafe(columns)
    /** A text[] parameter, passed as JSON: the driver has no array encoder. */
    const textArray = (items: ReadonlyArray<string>) =>
      sql`ARRAY(SELECT jsonb_array_elements_text(${JSON.stringify(items)}::jsonb))`

    return Endpoints.of({
      create: Effect.fn("Endpoints.create")(function* (tenantId, input) {
        const id = yield* newId("ep")
        const secret = yield* newWebhookSecret
        const [row] = yield* sql<EndpointRow>`
          INSERT INTO endpoints (id, tenant_id, url, description, event_types, enabled, metadata, secret)
          VALUES (${id}, ${tenantId}, ${input.url}, ${input.description ?? ""},
                  ${textArray(input.eventTypes ?? [])}, ${input.enabled ?? true},
                  ${JSON.stringify(input.metadata ?? {})}::jsonb, ${secret})
          RETURNING ${select}`
        if (row === undefined) return yield* Effect.die(new Error("INSERT ... RETURNING returned no row"))
        // A new endpoint has no circuit yet: no store to ask (this may run inside a transaction).
        return { ...toEndpoint(row), health: { circuit: "closed", openUntil: null } }
      }),

      list: Effect.fn("Endpoints.list")(function* (tenantId, page) {
        const before = Option.match(page.before, { onNone: () => sql``, onSome: (id) => sql`AND id < ${id}` })
        const rows = yield* sql<EndpointRow>`
          SELECT ${select} FROM endpoints WHERE tenant_id = ${tenantId} ${before}
          ORDER BY id DESC LIMIT ${page.limit + 1}`
        const stored = toPage(rows, page.limit, toEndpoint)
        const items = yield* Effect.forEach(stored.items, withHealth, { concurrency: 8 })
        return { ...stored, items }
      }),

      get: Effect.fn("Endpoints.get")(function* (tenantId, id) {
        const [row] = yield* sql<EndpointRow>`
          SELECT ${select} FROM endpoints WHERE tenant_id = ${tenantId} AND id = ${id}`
        return yield* oneWithHealth(row)
      }),

      update: Effect.fn("Endpoints.update")(function* (tenantId, id, patch) {
        // COALESCE keeps what the patch leaves out; one statement, scoped by tenant.
        const [row] = yield* sql<EndpointRow>`
          UPDATE endpoints SET
            url = COALESCE(${patch.url ?? null}::text, url),
            description = COALESCE(${patch.description ?? null}::text, description),
            event_types = ${patch.eventTypes === undefined ? sql`event_types` : textArray(patch.eventTypes)},
            enabled = COALESCE(${patch.enabled ?? null}::boolean, enabled),
            metadata = COALESCE(${patch.metadata === undefined ? null : JSON.stringify(patch.metadata)}::jsonb, metadata),
            updated_at = now()
          WHERE tenant_id = ${tenantId} AND id = ${id}
          RETURNING ${select}`
        return Option.map(Option.fromNullishOr(row), toEndpoint)
      }),

      delete: Effect.fn("Endpoints.delete")(function* (tenantId, id) {
        const rows = yield* sql`DELETE FROM endpoints WHERE tenant_id = ${tenantId} AND id = ${id} RETURNING id`
        return rows.length > 0
      }),

      getSecret: Effect.fn("Endpoints.getSecret")(function* (tenantId, id) {
        const [row] = yield* sql<SecretRow>`
          SELECT secret, previous_secret, previous_secret_expires_at
          FROM endpoints WHERE tenant_id = ${tenantId} AND id = ${id}`
        return Option.map(Option.fromNullishOr(row), (r) => toSecret(r, Date.now()))
      }),

      rotateSecret: Effect.fn("Endpoints.rotateSecret")(function* (tenantId, id) {
        const next = yield* newWebhookSecret
        const overlapSeconds = Duration.toSeconds(secretRotationOverlap)
        const [row] = yield* sql<SecretRow>`
          UPDATE endpoints SET
            previous_secret = secret,
            previous_secret_expires_at = now() + make_interval(secs => ${overlapSeconds}),
            secret = ${next},
            updated_at = now()
          WHERE tenant_id = ${tenantId} AND id = ${id}
          RETURNING secret, previous_secret, previous_secret_expires_at`
        return Option.map(Option.fromNullishOr(row), (r) => toSecret(r, Date.now()))
      })
    })
  })
)
