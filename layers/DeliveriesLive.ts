import { Effect, Layer, Option, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { AppConfig } from "../services/AppConfig.ts"
import { Deliveries, EndpointDeleted, EndpointDisabled, EventExpunged } from "../services/Deliveries.ts"
import { DeliveryWakeups } from "../services/DeliveryWakeups.ts"
import { type Delivery, DeliveryAttempt, DeliveryStatus, deliveryChannel } from "../src/domain/Delivery.ts"
import { newId } from "../src/domain/Ids.ts"
import { codexTestMessage, TestEvent } from "../src/domain/OperationalEvents.ts"
import { retainedRows } from "./RetentionSql.ts"
import { createdWithin } from "./SearchSql.ts"
import { sqlFailuresAsDefects } from "./SqlFailures.ts"
import { decodeRows, iso, isoOrNull, toPage } from "./SqlRows.ts"

/** A delivery row joined with its endpoint, decoded (see `decodeRows`): the status is an enum, five columns nullable. */
const DeliveryRow = Schema.Struct({
  id: Schema.String,
  event_id: Schema.String,
  endpoint_id: Schema.String,
  endpoint_deleted: Schema.Boolean,
  status: DeliveryStatus,
  attempt_count: Schema.Int,
  next_attempt_at: Schema.Date,
  last_status: Schema.NullOr(Schema.Int),
  last_error: Schema.NullOr(Schema.String),
  delivered_at: Schema.NullOr(Schema.Date),
  created_at: Schema.Date,
  updated_at: Schema.Date
})
type DeliveryRow = typeof DeliveryRow.Type

const AttemptRow = Schema.Struct({
  attempt: Schema.Int,
  started_at: Schema.Date,
  duration_ms: Schema.Int,
  outcome: DeliveryAttempt.fields.outcome,
  status_code: Schema.NullOr(Schema.Int),
  error: Schema.NullOr(Schema.String),
  response_excerpt: Schema.NullOr(Schema.String)
})
type AttemptRow = typeof AttemptRow.Type

const RetryTarget = Schema.Struct({
  status: DeliveryStatus,
  event_id: Schema.String,
  expunged: Schema.Boolean,
  endpoint_id: Schema.String,
  enabled: Schema.Boolean,
  deleted: Schema.Boolean
})

const RecoverBatch = Schema.Struct({ read: Schema.Int, queued: Schema.Int, last: Schema.NullOr(Schema.String) })

const deliveryRows = decodeRows(DeliveryRow)
/** A delivery with one of its attempts per row (none: one row, its `a_` columns null). */
const deliveryWithAttemptRows = decodeRows(
  Schema.Struct({
    ...DeliveryRow.fields,
    a_attempt: Schema.NullOr(Schema.Int),
    a_started_at: Schema.NullOr(Schema.Date),
    a_duration_ms: Schema.NullOr(Schema.Int),
    a_outcome: Schema.NullOr(AttemptRow.fields.outcome),
    a_status_code: Schema.NullOr(Schema.Int),
    a_error: Schema.NullOr(Schema.String),
    a_response_excerpt: Schema.NullOr(Schema.String)
  })
)
const retryTargets = decodeRows(RetryTarget)
const enabledRows = decodeRows(Schema.Struct({ enabled: Schema.Boolean }))
const recoverBatches = decodeRows(RecoverBatch)

const columns =
  "d.id, d.event_id, d.endpoint_id, e.deleted_at IS NOT NULL AS endpoint_deleted, d.status, d.attempt_count, " +
  "d.next_attempt_at, d.last_status, d.last_error, d.delivered_at, d.created_at, d.updated_at"

const toDelivery = (row: DeliveryRow): Delivery => ({
  id: row.id,
  eventId: row.event_id,
  endpointId: row.endpoint_id,
  endpointDeleted: row.endpoint_deleted,
  status: row.status,
  attemptCount: row.attempt_count,
  nextAttemptAt: row.status === "pending" ? iso(row.next_attempt_at) : null,
  lastStatus: row.last_status,
  lastError: row.last_error,
  deliveredAt: isoOrNull(row.delivered_at),
  createdAt: iso(row.created_at),
  updatedAt: iso(row.updated_at)
})

const toAttempt = (row: AttemptRow): typeof DeliveryAttempt.Type => ({
  attempt: row.attempt,
  startedAt: iso(row.started_at),
  durationMs: row.duration_ms,
  outcome: row.outcome,
  statusCode: row.status_code,
  error: row.error,
  responseExcerpt: row.response_excerpt
})

/** How many deliveries one statement of `recover` re-queues at most. */
export const recoverBatchSize = 1_000

export const DeliveriesLive: Layer.Layer<Deliveries, never, SqlClient.SqlClient | DeliveryWakeups | AppConfig> =
  Layer.effect(
    Deliveries,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const wakeups = yield* DeliveryWakeups
      // Past retention is absent from every read here, as after the purge (RetentionSql).
      const retained = retainedRows(sql, (yield* AppConfig).retention.keep)
      const select = sql.unsafe(columns)
      /** Every delivery read shows whether its endpoint was deleted (the row stays: see EndpointsLive `delete`). */
      const fromDeliveries = sql.unsafe("deliveries d JOIN endpoints e ON e.id = d.endpoint_id")
      // Due now, unleased. The attempt count is kept: numbering goes on, and the retry policy grants one more attempt
      // (or what is left of the budget), so a manual retry never restarts a full backoff series by surprise.
      const requeue = sql.unsafe(
        "status = 'pending', next_attempt_at = now(), locked_until = NULL, locked_by = NULL, delivered_at = NULL, " +
          "updated_at = now()"
      )
      // NOTIFY is transactional: the workers that LISTEN wake when the re-queue commits. This process's worker, which
      // cannot LISTEN on the embedded database, is woken after that commit too, however deep the transaction.
      const wakeWorkers = Effect.andThen(sql`SELECT pg_notify(${deliveryChannel}, '')`, wakeups.queued)
      return Deliveries.of({
        listForEvent: Effect.fn("Deliveries.listForEvent")(function* (tenantId, eventId) {
          const [event] = yield* sql`
          SELECT 1 FROM events ev WHERE tenant_id = ${tenantId} AND id = ${eventId} AND ${retained.event(tenantId, "ev")}`
          if (event === undefined) return Option.none()
          // A deleted endpoint's deliveries stay here, marked `endpointDeleted`: the event's history is whole.
          const rows = yield* deliveryRows(sql`
          SELECT ${select} FROM ${fromDeliveries}
          WHERE d.tenant_id = ${tenantId} AND d.event_id = ${eventId} AND ${retained.delivery(tenantId, "d")}
          ORDER BY d.id`)
          return Option.some(rows.map(toDelivery))
        }, sqlFailuresAsDefects),
        listForEndpoint: Effect.fn("Deliveries.listForEndpoint")(function* (tenantId, endpointId, page, status) {
          // A deleted endpoint is absent here as in every endpoint read (its deliveries: under their events).
          const [endpoint] = yield* sql`
          SELECT 1 FROM endpoints WHERE tenant_id = ${tenantId} AND id = ${endpointId} AND deleted_at IS NULL`
          if (endpoint === undefined) return Option.none()
          const before = Option.match(page.before, { onNone: () => sql``, onSome: (id) => sql`AND d.id < ${id}` })
          const ofStatus = Option.match(status, { onNone: () => sql``, onSome: (s) => sql`AND d.status = ${s}` })
          const rows = yield* deliveryRows(sql`
          SELECT ${select} FROM ${fromDeliveries}
          WHERE d.tenant_id = ${tenantId} AND d.endpoint_id = ${endpointId} ${ofStatus} ${before}
            AND ${retained.delivery(tenantId, "d")}
          ORDER BY d.id DESC LIMIT ${page.limit + 1}`)
          return Option.some(toPage(rows, page.limit, toDelivery))
        }, sqlFailuresAsDefects),

        // retry is a transaction, which holds a pooled connection: SQL only inside, never a network wait.
        retry: Effect.fn("Deliveries.retry")(
          function* (tenantId, id) {
            const [target] = yield* retryTargets(sql`
          SELECT d.status, d.event_id, ev.data_expunged_at IS NOT NULL AS expunged, d.endpoint_id, e.enabled,
                 e.deleted_at IS NOT NULL AS deleted
          FROM ${fromDeliveries} JOIN events ev ON ev.id = d.event_id
          WHERE d.tenant_id = ${tenantId} AND d.id = ${id} AND ${retained.delivery(tenantId, "d")}
          FOR UPDATE OF d FOR KEY SHARE OF ev`) // the event: held against the retention purge until this commits
            if (target === undefined) return Option.none()
            // Its data is gone: nothing can be sent. (Read again by the UPDATE below: an expunge this waited for.)
            if (target.expunged) return yield* new EventExpunged({ eventId: target.event_id })
            // The delivery exists (it stays readable), but there is nowhere to send it any more.
            if (target.deleted) return yield* new EndpointDeleted({ endpointId: target.endpoint_id })
            if (target.status !== "pending" && !target.enabled) {
              return yield* new EndpointDisabled({ endpointId: target.endpoint_id })
            }
            // Pending already means queued (maybe being sent right now): leave it, so a second retry queues nothing more.
            const [row] =
              target.status === "pending"
                ? yield* deliveryRows(sql`SELECT ${select} FROM ${fromDeliveries} WHERE d.id = ${id}`)
                : yield* deliveryRows(sql`
                UPDATE deliveries d SET ${requeue} FROM endpoints e
                WHERE d.id = ${id} AND d.status <> 'pending' AND e.id = d.endpoint_id
                  AND NOT EXISTS (SELECT 1 FROM events ev WHERE ev.id = d.event_id AND ev.data_expunged_at IS NOT NULL)
                RETURNING ${select}`)
            // Locked above, the delivery is still ours: no row means its event was expunged after the SELECT's snapshot
            // (the expunge held the delivery, and this waited for it).
            if (row === undefined && target.status !== "pending") {
              return yield* new EventExpunged({ eventId: target.event_id })
            }
            if (target.status !== "pending") yield* wakeWorkers
            return Option.fromNullishOr(row).pipe(Option.map(toDelivery))
          },
          sql.withTransaction,
          sqlFailuresAsDefects
        ),

        recover: Effect.fn("Deliveries.recover")(function* (tenantId, endpointId, since) {
          const [endpoint] = yield* enabledRows(sql`
          SELECT enabled FROM endpoints WHERE tenant_id = ${tenantId} AND id = ${endpointId} AND deleted_at IS NULL`)
          if (endpoint === undefined) return Option.none()
          if (!endpoint.enabled) return yield* new EndpointDisabled({ endpointId })
          // In batches by id (`deliveries_endpoint_status_idx`), each a statement of its own that commits by itself
          // and wakes the workers: no statement holds more than `recoverBatchSize` rows, however long the outage was
          // (under an Idempotency-Key, the middleware's transaction commits them all at its end). A batch finds nothing
          // once the endpoint is disabled or deleted meanwhile, and that ends it.
          let queued = 0
          let after = ""
          while (true) {
            const [batch] = yield* recoverBatches(sql`
            WITH batch AS (
              SELECT d.id FROM deliveries d JOIN events ev ON ev.id = d.event_id
              WHERE d.endpoint_id = ${endpointId} AND d.status = 'failed' AND d.id > ${after}
                AND d.tenant_id = ${tenantId} AND d.created_at >= ${since}
                AND EXISTS (SELECT 1 FROM endpoints e WHERE e.id = d.endpoint_id AND e.enabled AND e.deleted_at IS NULL)
                AND ${retained.delivery(tenantId, "d")}
                -- An expunged event has nothing to send: its deliveries stay as they are.
                AND ev.data_expunged_at IS NULL
              ORDER BY d.id
              LIMIT ${recoverBatchSize}
              -- Their events are held against the retention purge (which skips locked events) until this commits.
              FOR KEY SHARE OF ev
            ), queued AS (
              UPDATE deliveries d SET ${requeue} FROM batch WHERE d.id = batch.id AND d.status = 'failed'
              RETURNING d.id
            )
            SELECT (SELECT count(*)::int FROM batch) AS read, (SELECT count(*)::int FROM queued) AS queued,
                   (SELECT max(id) FROM batch) AS last`)
            if (batch === undefined) break
            queued += batch.queued
            if (batch.queued > 0) yield* wakeWorkers
            if (batch.read < recoverBatchSize || batch.last === null) break
            after = batch.last
          }
          return Option.some(queued)
        }, sqlFailuresAsDefects),

        /**
         * Newest first, by id. Which index serves it follows from the filters (migrations 0012, 0017): an endpoint's
         * `(endpoint_id, status, id)`, a status's partial `(tenant_id, status, id DESC)` (the status inlined, so the
         * planner can match the index's predicate), otherwise `(tenant_id, id DESC)`; a time window narrows the id range
         * (SearchSql). An event type is matched through the tenant's events of that type (`events_tenant_type_id_idx`).
         */
        search: Effect.fn("Deliveries.search")(function* (tenantId, filter, page) {
          const before = Option.match(page.before, { onNone: () => sql``, onSome: (id) => sql`AND d.id < ${id}` })
          const ofStatus = Option.match(filter.status, {
            onNone: () => sql``,
            onSome: (status) => sql`AND d.status = ${sql.unsafe(`'${status}'`)}`
          })
          const ofEndpoint = Option.match(filter.endpointId, {
            onNone: () => sql``,
            onSome: (id) => sql`AND d.endpoint_id = ${id}`
          })
          const ofType = Option.match(filter.eventType, {
            onNone: () => sql``,
            onSome: (type) => sql`
            AND d.event_id IN (SELECT ev.id FROM events ev WHERE ev.tenant_id = ${tenantId} AND ev.type = ${type}
                               ${createdWithin(sql, "evt", { since: Option.none(), until: filter.until }, "ev.")})`
          })
          const rows = yield* deliveryRows(sql`
          SELECT ${select} FROM ${fromDeliveries}
          WHERE d.tenant_id = ${tenantId} ${ofStatus} ${ofEndpoint} ${ofType} ${before}
                ${createdWithin(sql, "dlv", filter, "d.")} AND ${retained.delivery(tenantId, "d")}
          ORDER BY d.id DESC LIMIT ${page.limit + 1}`)
          return toPage(rows, page.limit, toDelivery)
        }, sqlFailuresAsDefects),

        // One statement: the event, its one delivery (whatever the endpoint's filter) and the NOTIFY naming them.
        sendTest: Effect.fn("Deliveries.sendTest")(function* (tenantId, endpointId) {
          const [endpoint] = yield* enabledRows(sql`
          SELECT enabled FROM endpoints WHERE tenant_id = ${tenantId} AND id = ${endpointId} AND deleted_at IS NULL`)
          if (endpoint === undefined) return Option.none()
          if (!endpoint.enabled) return yield* new EndpointDisabled({ endpointId })
          const eventId = yield* newId("evt")
          const [row] = yield* deliveryRows(sql`
          WITH event AS (
            INSERT INTO events (id, tenant_id, type, data, occurred_at)
            VALUES (${eventId}, ${tenantId}, ${TestEvent},
                    json_build_object('endpointId', ${endpointId}::text, 'message', ${codexTestMessage}::text), now())
            RETURNING id
          ), queued AS (
            INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id)
            SELECT 'dlv_' || codex_ulid(), ${tenantId}, event.id, ${endpointId} FROM event
            RETURNING *
          ), notified AS (
            SELECT pg_notify(${deliveryChannel}, ${`${tenantId} ${endpointId}`}) FROM queued
          )
          SELECT ${select}, (SELECT count(*) FROM notified) AS notified
          FROM queued d JOIN endpoints e ON e.id = d.endpoint_id`)
          if (row === undefined) return yield* Effect.die(new Error("INSERT ... RETURNING returned no row"))
          yield* wakeups.queued
          return Option.some(toDelivery(row))
        }, sqlFailuresAsDefects),

        /**
         * The delivery and its attempts in one statement, so from one snapshot: read in two, an attempt recorded in
         * between would show without its count (the worker writes both in one statement).
         */
        get: Effect.fn("Deliveries.get")(function* (tenantId, id) {
          const rows = yield* deliveryWithAttemptRows(sql`
          SELECT ${select}, a.attempt AS a_attempt, a.started_at AS a_started_at, a.duration_ms AS a_duration_ms,
                 a.outcome AS a_outcome, a.status_code AS a_status_code, a.error AS a_error,
                 a.response_excerpt AS a_response_excerpt
          FROM ${fromDeliveries} LEFT JOIN delivery_attempts a ON a.delivery_id = d.id
          WHERE d.tenant_id = ${tenantId} AND d.id = ${id} AND ${retained.delivery(tenantId, "d")}
          ORDER BY a.id`)
          const [first] = rows
          if (first === undefined) return Option.none()
          const attempts = rows.flatMap((row) =>
            row.a_attempt === null || row.a_started_at === null || row.a_duration_ms === null || row.a_outcome === null
              ? []
              : [
                  toAttempt({
                    attempt: row.a_attempt,
                    started_at: row.a_started_at,
                    duration_ms: row.a_duration_ms,
                    outcome: row.a_outcome,
                    status_code: row.a_status_code,
                    error: row.a_error,
                    response_excerpt: row.a_response_excerpt
                  })
                ]
          )
          return Option.some({ ...toDelivery(first), attempts })
        }, sqlFailuresAsDefects)
      })
    })
  )
