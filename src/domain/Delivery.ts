import { Schema } from "effect"
import { OccurredAt } from "./Event.ts"
import type { JsonText } from "./JsonText.ts"

/** The PostgreSQL channel the publishing transaction notifies and the delivery workers LISTEN on. */
export const deliveryChannel = "codex_deliveries"

/**
 * Whom a wake-up is about: the tenant and the endpoints whose deliveries were just queued. A worker with all of those
 * endpoints (or the tenant) at their cap in flight has nothing to claim for them until one of its sends ends, and that
 * end wakes it anyway; so it lets such a wake-up pass instead of running a claim that can only come back empty.
 */
export interface QueuedFor {
  readonly tenantId: string
  readonly endpointIds: ReadonlyArray<string>
}

/**
 * At most this many endpoints are named in a NOTIFY payload (ids are ~30 bytes; PostgreSQL takes up to 8,000): a
 * publish fanning out wider sends an empty payload, which wakes every worker as before.
 */
export const queuedForMaxEndpoints = 64

/**
 * A NOTIFY payload on `deliveryChannel`: `<tenant id> <endpoint id> ...` (ids never contain spaces), or empty when
 * unknown (a re-queue, a wide fan-out, an older replica): `undefined`, i.e. anything may be due.
 */
export const parseQueuedFor = (payload: string): QueuedFor | undefined => {
  const [tenantId, ...endpointIds] = payload.split(" ").filter((part) => part !== "")
  return tenantId === undefined || endpointIds.length === 0 ? undefined : { tenantId, endpointIds }
}

/**
 * The body of every webhook request (Standard Webhooks): `{ type, timestamp, data }`, `timestamp` in ISO 8601. `data`
 * is the event's stored JSON text, embedded as is: the receiver gets the publisher's members in their order, numbers
 * as written and strings with their escapes.
 */
export const webhookBody = (type: string, timestamp: Date, data: JsonText): string =>
  `{"type":${JSON.stringify(type)},"timestamp":"${timestamp.toISOString()}","data":${data}}`

/** `last_error` of a delivery cancelled because its endpoint was deleted (by the deletion, or at the worker's claim). */
export const deletedEndpointError = "cancelled: the endpoint was deleted"

/**
 * `last_error` of a delivery cancelled because its endpoint was disabled by a PATCH (the claim skips a disabled
 * endpoint's deliveries: they wait for it to be enabled again).
 */
export const disabledEndpointError = "cancelled: the endpoint is disabled"

/**
 * `last_error` of a delivery cancelled because its event's data was expunged (by the expunge, or at the worker's claim
 * should one be re-queued by a request that raced it).
 */
export const expungedEventError = "cancelled: the event's data was expunged"

/** How one attempt ended, as stored in `delivery_attempts.outcome`. */
export type AttemptOutcome = "succeeded" | "failed" | "gone" | "timeout" | "network_error" | "blocked"

/**
 * What a response status means (Standard Webhooks): 2xx = delivered; 410 Gone = stop sending to this endpoint;
 * everything else, 3xx included (redirects are never followed), is a failure to retry.
 */
export const outcomeOfStatus = (status: number): AttemptOutcome =>
  status >= 200 && status < 300 ? "succeeded" : status === 410 ? "gone" : "failed"

/**
 * A status line an HTTP client accepts is not always a status HTTP defines: `HTTP/1.1 999 Weird` parses. Only 100-599
 * are statuses (RFC 9110 §15); anything else is a broken receiver, recorded as a failed attempt without a status.
 */
export const isHttpStatus = (status: number): boolean => Number.isInteger(status) && status >= 100 && status <= 599

/** The attempt error recorded for a status outside 100-599. */
export const invalidStatusError = (status: number): string =>
  `invalid HTTP status ${status}: the receiver must answer with a status between 100 and 599`

/** The largest response body excerpt kept per attempt. */
export const responseExcerptBytes = 4096

/** Text safe to store in PostgreSQL `text` (no NUL) and bounded in length. */
export const storableExcerpt = (bytes: Uint8Array): string =>
  new TextDecoder("utf-8", { fatal: false }).decode(bytes).replaceAll("\u0000", "\uFFFD")

/** A W3C traceparent, parsed; undefined when malformed. */
export const parseTraceparent = (
  value: string | null
): { readonly traceId: string; readonly spanId: string; readonly sampled: boolean } | undefined => {
  if (value === null) return undefined
  const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(value)
  if (match?.[1] === undefined || match[2] === undefined || match[3] === undefined) return undefined
  return { traceId: match[1], spanId: match[2], sampled: (Number.parseInt(match[3], 16) & 1) === 1 }
}

/** One attempt, as the API shows it. */
export const DeliveryAttempt = Schema.Struct({
  attempt: Schema.Int,
  startedAt: Schema.String,
  durationMs: Schema.Int,
  outcome: Schema.Literals(["succeeded", "failed", "gone", "timeout", "network_error", "blocked"]),
  statusCode: Schema.NullOr(Schema.Int),
  error: Schema.NullOr(Schema.String),
  responseExcerpt: Schema.NullOr(Schema.String)
}).annotate({ identifier: "DeliveryAttempt" })
export type DeliveryAttempt = typeof DeliveryAttempt.Type

export const DeliveryStatus = Schema.Literals(["pending", "succeeded", "failed", "cancelled"]).annotate({
  description: "`pending` (queued or being retried), `succeeded`, `failed` (retries exhausted) or `cancelled`."
})
export type DeliveryStatus = typeof DeliveryStatus.Type

/** A delivery (one event to one endpoint), as the API shows it. */
export const Delivery = Schema.Struct({
  id: Schema.String,
  eventId: Schema.String,
  endpointId: Schema.String,
  endpointDeleted: Schema.Boolean.annotate({
    description:
      "True when its endpoint has been deleted: the delivery and its attempts stay readable under the event, the " +
      "endpoint itself is gone (404), and nothing more is sent (a delivery still pending then was cancelled)."
  }),
  status: DeliveryStatus,
  attemptCount: Schema.Int,
  nextAttemptAt: Schema.NullOr(Schema.String),
  lastStatus: Schema.NullOr(Schema.Int),
  lastError: Schema.NullOr(Schema.String),
  deliveredAt: Schema.NullOr(Schema.String),
  createdAt: Schema.String,
  updatedAt: Schema.String
}).annotate({ identifier: "Delivery" })
export type Delivery = typeof Delivery.Type

export const DeliveryWithAttempts = Schema.Struct({
  ...Delivery.fields,
  attempts: Schema.Array(DeliveryAttempt)
}).annotate({ identifier: "DeliveryWithAttempts" })
export type DeliveryWithAttempts = typeof DeliveryWithAttempts.Type

export const DeliveryList = Schema.Struct({ data: Schema.Array(Delivery) }).annotate({ identifier: "DeliveryList" })

export const RecoverDeliveries = Schema.Struct({
  since: OccurredAt.annotate({
    description: "Re-queue the failed deliveries created at or after this time (ISO 8601 with offset).",
    examples: ["2026-12-01T10:00:00Z"]
  })
}).annotate({ identifier: "RecoverDeliveries" })

export const Recovered = Schema.Struct({
  queued: Schema.Int.annotate({ description: "How many failed deliveries were queued again." })
}).annotate({ identifier: "Recovered" })
