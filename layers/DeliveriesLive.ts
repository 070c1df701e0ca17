import { Effect, Layer, Option } from "effect"
import { SqlClient } from "effect/sql"
import { Deliveries } from "../services/Deliveries.ts"
import type { AttemptOutcome, Delivery, DeliveryAttempt } from "../src/domain/Delivery.ts"
import { iso, isoOrNull } from "./SqlRows.ts"

interface DeliveryRow {
  readonly id: string
  readonly event_id: string
  readonly endpoint_id: string
  readonly status: Delivery["status"]
  readonly attempt_count: number
  readonly next_attempt_at: Date
  readonly last_status: number | null
  readonly last_error: string | null
  readonly delivered_at: Date | null
  readonly created_at: Date
  readonly updated_at: Date
}

interface AttemptRow {
  readonly attempt: number
  readonly started_at: Date
  readonly duration_ms: number
  readonly outcome: AttemptOutcome
  readonly status_code: number | null
  readonly error: string | null
  readonly response_excerpt: string | null
}

const columns =
  "id, event_id, endpoint_id, status, attempt_count, next_attempt_at, last_status, last_error, delivered_at, created_at, updated_at"

const toDelivery = (row: DeliveryRow): Delivery => ({
  id: row.id,
  eventId: row.event_id,
  endpointId: row.endpoint_id,
  status: row.status,
  attemptCount: row.attempt_count,
  nextAttemptAt: row.status === "pending" ? iso(row.next_attempt_at) : null,
  lastStatus: row.last_status,
  lastError: row.last_error,
  deliveredAt: isoOrNull(row.delivered_at),
  createdAt: iso(row.created_at),
  updatedAt: iso(row.updated_at)
})

const toAttempt = (row: AttemptRow): DeliveryAttempt => ({
  attempt: row.attempt,
  startedAt: iso(row.started_at),
  durationMs: row.duration_ms,
  outcome: row.outcome,
  statusCode: row.status_code,
  error: row.error,
  responseExcerpt: row.response_excerpt
})

export const DeliveriesLive: Layer.Layer<Deliveries, never, SqlClient.SqlClient> = Layer.effect(
  Deliveries,
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const select = sql.unsafe(columns)
    return Deliveries.of({
      listForEvent: Effect.fn("Deliveries.listForEvent")(function* (tenantId, eventId) {
        const [event] = yield* sql`SELECT 1 FROM events WHERE tenant_id = ${tenantId} AND id = ${eventId}`
        if (event === undefined) return Option.none()
        const rows = yield* sql<DeliveryRow>`
          SELECT ${select} FROM deliveries WHERE tenant_id = ${tenantId} AND event_id = ${eventId} ORDER BY id`
        return Option.some(rows.map(toDelivery))
      }),
      get: Effect.fn("Deliveries.get")(function* (tenantId, id) {
        const [row] = yield* sql<DeliveryRow>`
          SELECT ${select} FROM deliveries WHERE tenant_id = ${tenantId} AND id = ${id}`
        if (row === undefined) return Option.none()
        const attempts = yield* sql<AttemptRow>`
          SELECT attempt, started_at, duration_ms, outcome, status_code, error, response_excerpt
          FROM delivery_attempts WHERE delivery_id = ${id} ORDER BY id`
        return Option.some({ ...toDelivery(row), attempts: attempts.map(toAttempt) })
      })
    })
  })
)
