import { Effect, Layer, Option, type Schema } from "effect"
import { SqlClient } from "effect/sql"
import { Events } from "../services/Events.ts"
import { deliveryChannel } from "../src/domain/Delivery.ts"
import type { Event } from "../src/domain/Event.ts"
import { type EventId, newId } from "../src/domain/Ids.ts"
import { iso, toPage } from "./SqlRows.ts"

interface EventRow {
  readonly id: EventId
  readonly type: string
  readonly data: Record<string, Schema.Json>
  readonly occurred_at: Date
  readonly created_at: Date
}

const toEvent = (row: EventRow): Event => ({
  id: row.id,
  type: row.type,
  data: row.data,
  occurredAt: iso(row.occurred_at),
  createdAt: iso(row.created_at)
})

/**
 * The W3C `traceparent` of the publishing span, stored with each delivery so that its attempts continue the trace.
 * Null when there is no span or its ids are not W3C-shaped.
 */
const currentTraceparent: Effect.Effect<string | null> = Effect.currentSpan.pipe(
  Effect.map((span) =>
    /^[0-9a-f]{32}$/.test(span.traceId) && /^[0-9a-f]{16}$/.test(span.spanId)
      ? `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`
      : null
  ),
  Effect.orElseSucceed(() => null)
)

export const EventsLive: Layer.Layer<Events, never, SqlClient.SqlClient> = Layer.effect(
  Events,
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient

    return Events.of({
      publish: Effect.fn("Events.publish")(function* (tenantId, input) {
        const id = yield* newId("evt")
        const traceparent = yield* currentTraceparent
        // The event and its deliveries (the outbox) in ONE statement: both are written or neither is. The endpoint
        // filter is EventTypeFilter.matchesEventType in SQL: empty = all, exact type, or `prefix.*`.
        const [row] = yield* sql<EventRow & { readonly deliveries_queued: number }>`
          WITH event AS (
            INSERT INTO events (id, tenant_id, type, data, occurred_at)
            VALUES (${id}, ${tenantId}, ${input.type}, ${JSON.stringify(input.data)}::jsonb,
                    COALESCE(${input.occurredAt ?? null}::timestamptz, now()))
            RETURNING id, type, data, occurred_at, created_at
          ), queued AS (
            INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, traceparent)
            SELECT 'dlv_' || codex_ulid(), ${tenantId}, ${id}, e.id, ${traceparent}
            FROM endpoints e
            WHERE e.tenant_id = ${tenantId} AND e.enabled
              AND (cardinality(e.event_types) = 0
                   OR ${input.type} = ANY (e.event_types)
                   OR EXISTS (SELECT 1 FROM unnest(e.event_types) AS p(pattern)
                              WHERE right(p.pattern, 2) = '.*'
                                AND starts_with(${input.type}, left(p.pattern, -1))))
            RETURNING 1
          ), notified AS (
            -- Wakes the delivery workers (LISTEN codex_deliveries). NOTIFY is transactional: it reaches them when this
            -- statement's transaction commits, never before and never on rollback.
            SELECT pg_notify(${deliveryChannel}, '') FROM (SELECT count(*) AS n FROM queued) q WHERE q.n > 0
          )
          SELECT event.*, (SELECT count(*)::int FROM queued) AS deliveries_queued,
                 (SELECT count(*)::int FROM notified) AS notified
          FROM event`
        if (row === undefined) return yield* Effect.die(new Error("INSERT ... RETURNING returned no row"))
        return { event: toEvent(row), deliveriesQueued: row.deliveries_queued }
      }),

      list: Effect.fn("Events.list")(function* (tenantId, page, type) {
        const before = Option.match(page.before, { onNone: () => sql``, onSome: (id) => sql`AND id < ${id}` })
        const ofType = Option.match(type, { onNone: () => sql``, onSome: (t) => sql`AND type = ${t}` })
        const rows = yield* sql<EventRow>`
          SELECT id, type, data, occurred_at, created_at FROM events
          WHERE tenant_id = ${tenantId} ${ofType} ${before}
          ORDER BY id DESC LIMIT ${page.limit + 1}`
        return toPage(rows, page.limit, toEvent)
      }),

      get: Effect.fn("Events.get")(function* (tenantId, id) {
        const [row] = yield* sql<EventRow>`
          SELECT id, type, data, occurred_at, created_at FROM events WHERE tenant_id = ${tenantId} AND id = ${id}`
        return Option.map(Option.fromNullishOr(row), toEvent)
      })
    })
  })
)
