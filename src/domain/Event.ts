import { Schema } from "effect"
import { EventId } from "./Ids.ts"

export const EventType = Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_.-]{1,128}$/)).annotate({
  description: "1..128 characters of `A-Z a-z 0-9 _ . -`.",
  examples: ["order.created"]
})

export const EventData = Schema.Record(Schema.String, Schema.Json).annotate({
  description: "Any JSON object: delivered to the endpoints as `data`.",
  examples: [{ orderId: "o_123", amount: 4200 }]
})

/** Calendar-valid (no February 30th), with a zone, between 1900 and 9999: what PostgreSQL's timestamptz accepts. */
const isCalendarValid = (s: string): boolean => {
  const time = Date.parse(s)
  return !Number.isNaN(time) && Number(s.slice(0, 4)) >= 1900 && sameCalendarDay(s, time)
}

/** Rejects dates JavaScript would roll over (2026-02-30 → March 2nd) by re-reading the local date part. */
const sameCalendarDay = (s: string, time: number): boolean => {
  const offset = s.endsWith("Z")
    ? 0
    : (s.at(-6) === "-" ? -1 : 1) * (Number(s.slice(-5, -3)) * 60 + Number(s.slice(-2)))
  const local = new Date(time + offset * 60_000).toISOString()
  return local.slice(0, 10) === s.slice(0, 10)
}

export const OccurredAt = Schema.String.check(
  Schema.isPattern(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/),
  Schema.makeFilter((s: string) => isCalendarValid(s) || "must be a real date-time between 1900 and 9999")
).annotate({
  description: "ISO 8601 date-time with a zone; defaults to the time of the request.",
  examples: ["2026-11-25T10:00:00Z"]
})

export const Event = Schema.Struct({
  id: EventId,
  type: Schema.String,
  data: Schema.Record(Schema.String, Schema.Json),
  occurredAt: Schema.String,
  createdAt: Schema.String
}).annotate({ identifier: "Event" })
export type Event = typeof Event.Type

export const PublishEvent = Schema.Struct({
  type: EventType,
  data: EventData,
  occurredAt: Schema.optionalKey(OccurredAt)
}).annotate({ identifier: "PublishEvent" })
export type PublishEvent = typeof PublishEvent.Type

export const PublishedEvent = Schema.Struct({
  event: Event,
  deliveriesQueued: Schema.Int.annotate({ description: "Deliveries created: one per enabled matching endpoint." })
}).annotate({ identifier: "PublishedEvent" })
export type PublishedEvent = typeof PublishedEvent.Type
