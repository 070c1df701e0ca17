import { Context, Effect, Layer, Option, Schema, Tracer } from "effect"
import { HttpServerRequest } from "effect/http"
import { SqlClient } from "effect/sql"
import { AppConfig } from "../services/AppConfig.ts"
import { DeliveryWakeups } from "../services/DeliveryWakeups.ts"
import { Events } from "../services/Events.ts"
import type { KeyClaim } from "../services/IdempotencyStore.ts"
import { deliveryChannel, expungedEventError, queuedForMaxEndpoints } from "../src/domain/Delivery.ts"
import type { NewEvent, Publication, StoredEvent } from "../src/domain/Event.ts"
import { EventId, newId, type TenantId } from "../src/domain/Ids.ts"
import { operationalPrefix } from "../src/domain/OperationalEvents.ts"
import { validTraceparent } from "../src/domain/TraceContext.ts"
import { namesEventType } from "./EventTypeFilterSql.ts"
import { completionInWrite } from "./IdempotencyKeySql.ts"
import { retainedRows } from "./RetentionSql.ts"
import { createdWithin } from "./SearchSql.ts"
import { sqlFailuresAsDefects } from "./SqlFailures.ts"
import { decodeRows, iso, isoOrNull, toPage } from "./SqlRows.ts"

/**
 * `events.data` is a `json` column: PostgreSQL checks the text and keeps it as is (`jsonb` would reorder members and
 * rewrite numbers). It is read as `data::text`, never as `data`, which the driver would `JSON.parse`. NULL once
 * expunged (`data_expunged_at` set).
 */
const eventMetadata = {
  id: EventId,
  type: Schema.String,
  occurred_at: Schema.Date,
  created_at: Schema.Date
}
/** `data` arrives as text (PostgreSQL checked it is JSON on the way in): the brand says so. */
const EventRow = Schema.Struct({
  ...eventMetadata,
  data: Schema.NullOr(Schema.String.pipe(Schema.brand("JsonText"))),
  data_expunged_at: Schema.NullOr(Schema.Date)
})
type EventRow = typeof EventRow.Type
const eventRows = decodeRows(EventRow)

/** What the publishing statement returns: the event without its `data` (not read back) and the fan-out count. */
const publishedRows = decodeRows(Schema.Struct({ ...eventMetadata, deliveries_queued: Schema.Int }))

/** What the expunging statement returns: the event as it is now, and what else it erased or cancelled. */
const expungedRows = decodeRows(
  Schema.Struct({ ...EventRow.fields, deliveries_cancelled: Schema.Int, excerpts_erased: Schema.Int })
)

const eventColumns = "id, type, data::text AS data, occurred_at, created_at, data_expunged_at"

const toEvent = (row: EventRow): StoredEvent => ({
  id: row.id,
  type: row.type,
  data: row.data,
  occurredAt: iso(row.occurred_at),
  createdAt: iso(row.created_at),
  expungedAt: isoOrNull(row.data_expunged_at)
})

/** What an Idempotency-Key completed by `publishKeyed` remembers: enough to answer the same again. */
const PublishedRef = Schema.Struct({
  event: EventId,
  deliveriesQueued: Schema.Int,
  deprecation: Schema.optionalKey(Schema.NullOr(Schema.String))
})
const decodeRef = Schema.decodeUnknownOption(PublishedRef)

/**
 * The W3C `traceparent` stored with each delivery, so that its attempts continue the publisher's trace. With tracing
 * on: the publishing span's (null when its ids are not W3C-shaped). With tracing off (Effect's native tracer: its spans
 * are exported nowhere, so their ids would be random and unrelated): the caller's own `traceparent`, unchanged, or
 * none.
 */
const outboxTraceparent: Effect.Effect<string | null> = Effect.withFiber((fiber) => {
  if (fiber.getRef(Tracer.Tracer) === Tracer.nativeTracer) {
    const request = Context.getOrUndefined(fiber.context, HttpServerRequest.HttpServerRequest)
    return Effect.succeed(validTraceparent(request?.headers.traceparent) ?? null)
  }
  return Effect.currentSpan.pipe(
    Effect.map((span) =>
      /^[0-9a-f]{32}$/.test(span.traceId) && /^[0-9a-f]{16}$/.test(span.spanId)
        ? `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`
        : null
    ),
    Effect.orElseSucceed(() => null)
  )
})

export const EventsLive: Layer.Layer<Events, never, SqlClient.SqlClient | DeliveryWakeups | AppConfig> = Layer.effect(
  Events,
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const wakeups = yield* DeliveryWakeups
    const retained = retainedRows(sql, (yield* AppConfig).retention.keep)

    /**
     * The event and its deliveries (the outbox) in ONE statement: both are written or neither is. With an
     * Idempotency-Key claim, the same statement completes the key (CompletionInWrite): the event is selected FROM `held`, so
     * nothing is written once the claim is lost (None), and the key stores a ref to the event for replays.
     */
    const write = (tenantId: TenantId, input: NewEvent, claim: KeyClaim | undefined) =>
      Effect.gen(function* () {
        const id = yield* newId("evt")
        const traceparent = yield* outboxTraceparent
        const completion = claim === undefined ? undefined : completionInWrite(sql, claim)
        const held = completion === undefined ? sql`` : sql`held AS MATERIALIZED (${completion.held}),`
        const fromHeld = completion === undefined ? sql`` : sql`FROM held`
        const completed =
          completion === undefined
            ? sql``
            : sql`, completed AS (${completion.complete(
                // `deprecation` only when the type is deprecated: the ref is otherwise what it always was.
                sql`jsonb_strip_nulls(jsonb_build_object('event', ${id}::text,
                                      'deliveriesQueued', (SELECT count(*)::int FROM queued),
                                      'deprecation', ${input.deprecation ?? null}::text))`
              )})`
        // The endpoint filter is EventTypeFilter.matchesEventType in SQL: empty = all (but `codex.*`, which tenants
        // cannot publish anyway), exact type, or `prefix.*`.
        // `data` is not read back: the column holds exactly the text sent.
        const [row] = yield* publishedRows(sql`
          WITH ${held} event AS (
            INSERT INTO events (id, tenant_id, type, data, occurred_at)
            SELECT ${id}, ${tenantId}, ${input.type}, ${input.data}::json,
                   COALESCE(${input.occurredAt ?? null}::timestamptz, now())
            ${fromHeld}
            RETURNING id, type, occurred_at, created_at
          ), queued AS (
            INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, traceparent)
            SELECT 'dlv_' || codex_ulid(), ${tenantId}, event.id, e.id, ${traceparent}
            FROM event CROSS JOIN endpoints e
            WHERE e.tenant_id = ${tenantId} AND e.enabled AND e.deleted_at IS NULL
              AND ((cardinality(e.event_types) = 0 AND NOT starts_with(${input.type}, ${operationalPrefix}))
                   OR ${namesEventType(sql, sql`${input.type}`)})
              -- The payload filter (EventFilter), against { type, data }: the document is built once per statement,
              -- and only when an endpoint has a filter (an uncorrelated subquery runs at its first use).
              AND (e.filter_path IS NULL
                   OR jsonb_path_match((SELECT jsonb_build_object('type', ${input.type}::text, 'data', ${input.data}::jsonb)),
                                       e.filter_path))
            RETURNING endpoint_id
          ), notified AS (
            -- Wakes the delivery workers that LISTEN codex_deliveries, in any process. NOTIFY is transactional: it
            -- reaches them when this statement's transaction commits, never before and never on rollback. It names
            -- the tenant and the endpoints (src/domain/Delivery.ts QueuedFor), unless there are too many to name.
            SELECT pg_notify(${deliveryChannel},
                             CASE WHEN q.n <= ${queuedForMaxEndpoints} THEN ${tenantId}::text || ' ' || q.ids ELSE '' END)
            FROM (SELECT count(*) AS n, string_agg(endpoint_id, ' ') AS ids FROM queued) q WHERE q.n > 0
          ) ${completed}
          SELECT event.*, (SELECT count(*)::int FROM queued) AS deliveries_queued,
                 (SELECT count(*)::int FROM notified) AS notified
          FROM event`)
        // This process's worker, which cannot LISTEN on the embedded database: woken once the statement has committed.
        if (row !== undefined && row.deliveries_queued > 0) yield* wakeups.queued
        return Option.map(
          Option.fromNullishOr(row),
          (found): Publication => ({
            event: toEvent({ ...found, data: input.data, data_expunged_at: null }),
            deliveriesQueued: found.deliveries_queued,
            ...(input.deprecation === undefined ? {} : { deprecation: input.deprecation })
          })
        )
      })

    const find = (tenantId: TenantId, id: EventId) =>
      eventRows(sql`
        SELECT ${sql.literal(eventColumns)} FROM events ev
        WHERE tenant_id = ${tenantId} AND id = ${id} AND ${retained.event(tenantId, "ev")}`).pipe(
        Effect.map(([row]) => Option.map(Option.fromNullishOr(row), toEvent))
      )

    return Events.of({
      publish: Effect.fn("Events.publish")(function* (tenantId, input) {
        const published = yield* write(tenantId, input, undefined)
        if (Option.isNone(published)) return yield* Effect.die(new Error("INSERT ... RETURNING returned no row"))
        return published.value
      }, sqlFailuresAsDefects),

      publishKeyed: Effect.fn("Events.publish")(function* (tenantId, input, claim) {
        return yield* write(tenantId, input, claim)
      }, sqlFailuresAsDefects),

      published: Effect.fn("Events.published")(function* (tenantId, ref) {
        const decoded = decodeRef(ref)
        if (Option.isNone(decoded))
          return yield* Effect.die(new Error("an idempotency key holds a malformed event ref"))
        const event = yield* find(tenantId, decoded.value.event)
        const { deliveriesQueued, deprecation } = decoded.value
        return Option.map(
          event,
          (found): Publication => ({
            event: found,
            deliveriesQueued,
            ...(deprecation === undefined || deprecation === null ? {} : { deprecation })
          })
        )
      }, sqlFailuresAsDefects),

      list: Effect.fn("Events.list")(function* (tenantId, page, { type, ...range }) {
        const before = Option.match(page.before, { onNone: () => sql``, onSome: (id) => sql`AND id < ${id}` })
        // No filter: the tenant's own events; operational ones (`codex.*`) are listed when asked for by name, as an
        // endpoint receives them (EventTypeFilter).
        const ofType = Option.match(type, {
          onNone: () => sql`AND NOT starts_with(type, ${operationalPrefix})`,
          onSome: (t) => (t.endsWith(".*") ? sql`AND starts_with(type, ${t.slice(0, -1)})` : sql`AND type = ${t}`)
        })
        const rows = yield* eventRows(sql`
          SELECT ${sql.literal(eventColumns)} FROM events ev
          WHERE tenant_id = ${tenantId} ${ofType} ${before} ${createdWithin(sql, "evt", range)}
            AND ${retained.event(tenantId, "ev")}
          ORDER BY id DESC LIMIT ${page.limit + 1}`)
        return toPage(rows, page.limit, toEvent)
      }, sqlFailuresAsDefects),

      get: Effect.fn("Events.get")(function* (tenantId, id) {
        return yield* find(tenantId, id)
      }, sqlFailuresAsDefects),

      /**
       * First every delivery of the event is locked (by id, the order the worker's record takes them in): a worker
       * recording an attempt of one of them holds it (FOR KEY SHARE) until it commits, so the write below, a statement
       * of its own with its own snapshot, sees that attempt and erases its excerpt; a record that comes after waits for
       * this transaction, and the worker erases its excerpt itself (DeliveryQueue). Pending deliveries are cancelled in
       * the same statement as the data is erased, leases included: a claim skips locked rows and re-reads status, so
       * nothing is sent after this commits. A send already in flight finishes (its request carried the data); its
       * attempt is recorded without an excerpt and the delivery stays cancelled.
       */
      expunge: Effect.fn("Events.expunge")(
        function* (tenantId, id) {
          yield* sql`
            SELECT id FROM deliveries WHERE event_id = ${id} AND tenant_id = ${tenantId} ORDER BY id FOR UPDATE`
          const [row] = yield* expungedRows(sql`
            WITH expunged AS (
              UPDATE events ev SET data = NULL, data_expunged_at = COALESCE(data_expunged_at, now())
              WHERE tenant_id = ${tenantId} AND id = ${id} AND ${retained.event(tenantId, "ev")}
              RETURNING ${sql.literal(eventColumns)}
            ), cancelled AS (
              UPDATE deliveries d SET status = 'cancelled', locked_until = NULL, locked_by = NULL,
                last_error = ${expungedEventError}, updated_at = now()
              FROM expunged ev WHERE d.event_id = ev.id AND d.status = 'pending'
              RETURNING d.id
            ), erased AS (
              UPDATE delivery_attempts a SET response_excerpt = NULL
              FROM deliveries d JOIN expunged ev ON ev.id = d.event_id
              WHERE a.delivery_id = d.id AND a.response_excerpt IS NOT NULL
              RETURNING a.id
            )
            SELECT ev.*, (SELECT count(*)::int FROM cancelled) AS deliveries_cancelled,
                   (SELECT count(*)::int FROM erased) AS excerpts_erased
            FROM expunged ev`)
          if (row === undefined) return Option.none()
          yield* Effect.logInfo("event data expunged").pipe(
            Effect.annotateLogs({
              eventId: id,
              deliveriesCancelled: row.deliveries_cancelled,
              excerptsErased: row.excerpts_erased
            })
          )
          return Option.some(toEvent(row))
        },
        sql.withTransaction,
        sqlFailuresAsDefects
      )
    })
  })
)
