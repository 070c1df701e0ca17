import { Schema } from "effect"
import { EventId } from "./Ids.ts"
import type { JsonText } from "./JsonText.ts"
import { approximateJsonSchema, isStorableText, storableTextMessage } from "./StorableText.ts"

export const EventType = Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_.-]{1,128}$/)).annotate({
  description: "1..128 characters of `A-Z a-z 0-9 _ . -`.",
  examples: ["order.created"]
})

/** Objects and arrays nested deeper than this are refused: PostgreSQL's JSON parser and receivers' parsers recurse. */
export const maxDataDepth = 64

/**
 * Why `data` cannot be stored, if it cannot: nesting deeper than `maxDataDepth`, or a key or string PostgreSQL
 * refuses (see StorableText). Walks the value with an explicit stack, so any depth is safe to inspect.
 */
const unstorableData = (data: Schema.Json): string | undefined => {
  const stack: Array<{ readonly value: Schema.Json; readonly depth: number }> = [{ value: data, depth: 1 }]
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const { value, depth } = item
    if (typeof value === "string") {
      if (!isStorableText(value)) return `strings ${storableTextMessage}`
    } else if (typeof value === "object" && value !== null) {
      if (depth > maxDataDepth) return `must not nest objects and arrays deeper than ${maxDataDepth} levels`
      if (Array.isArray(value)) {
        for (const element of value) stack.push({ value: element, depth: depth + 1 })
      } else {
        for (const [key, element] of Object.entries(value)) {
          if (!isStorableText(key)) return `keys ${storableTextMessage}`
          stack.push({ value: element, depth: depth + 1 })
        }
      }
    }
  }
  return undefined
}

/** Marks the end of a container's members on the walk's stack: the container leaves the current path. */
class Leave {
  readonly container: object
  constructor(container: object) {
    this.container = container
  }
}

/**
 * A JSON value as `JSON.parse` reads it: `Schema.Json`'s trees of null, booleans, strings, numbers, arrays and plain
 * objects, except that a number may be ±Infinity. That is how `JSON.parse` reads a valid literal beyond the double
 * range (`1e400`); the event keeps the literal as written (see JsonText), so it is accepted. Explicit stack: any
 * depth is safe to inspect; a cycle (only a client's own value can have one) is refused.
 */
const isParsedJson = (root: unknown): root is Schema.Json => {
  const path = new Set<object>()
  const stack: Array<unknown> = [root]
  while (stack.length > 0) {
    const value = stack.pop()
    if (value instanceof Leave) {
      path.delete(value.container)
    } else if (typeof value === "number") {
      if (Number.isNaN(value)) return false
    } else if (typeof value === "object" && value !== null) {
      if (path.has(value)) return false
      const isArray = Array.isArray(value)
      const prototype: unknown = Object.getPrototypeOf(value)
      if (!isArray && prototype !== Object.prototype && prototype !== null) return false
      path.add(value)
      stack.push(new Leave(value))
      for (const element of isArray ? value : Object.values(value)) stack.push(element)
    } else if (value !== null && typeof value !== "string" && typeof value !== "boolean") {
      return false
    }
  }
  return true
}

const JsonValue = Schema.declare(isParsedJson, { expected: "JSON value", toCodecJson: () => undefined })

export const EventData = Schema.Record(Schema.String, JsonValue)
  .check(
    Schema.makeFilter((data: Record<string, Schema.Json>) => unstorableData(data) ?? true, approximateJsonSchema())
  )
  .annotate({
    description:
      "Any JSON object, delivered to the endpoints as `data` and returned exactly as sent: member order, number text " +
      "and string escapes are kept, the whitespace between tokens is removed, duplicate member names are refused. " +
      `At most ${maxDataDepth} levels deep; strings and keys must not contain NUL characters or unpaired surrogates.`,
    examples: [{ orderId: "o_123", amount: 4200 }]
  })

/** The widest offset of a real time zone; PostgreSQL refuses offsets beyond 15:59 ("displacement out of range"). */
const maxOffsetMinutes = 14 * 60

/** Minutes east of UTC of an ISO 8601 date-time ending in `Z` or `±hh:mm`. */
const offsetMinutes = (s: string): number =>
  s.endsWith("Z") ? 0 : (s.at(-6) === "-" ? -1 : 1) * (Number(s.slice(-5, -3)) * 60 + Number(s.slice(-2)))

/** The first and last instants accepted: what PostgreSQL's timestamptz and `toISOString` both render as 4-digit years. */
const earliestInstant = Date.UTC(1900, 0, 1)
const latestInstant = Date.UTC(9999, 11, 31, 23, 59, 59)

/**
 * Calendar-valid (no February 30th), with a zone offset within ±14:00, as an instant between 1900-01-01T00:00:00Z and
 * 9999-12-31T23:59:59Z: `9999-12-31T23:59:59-14:00` is a year-10000 instant, which would be stored and rendered as
 * `+010000-...`.
 */
const isCalendarValid = (s: string): boolean => {
  const time = Date.parse(s)
  return (
    !Number.isNaN(time) &&
    time >= earliestInstant &&
    time <= latestInstant &&
    Math.abs(offsetMinutes(s)) <= maxOffsetMinutes &&
    sameCalendarDay(s, time)
  )
}

/** Rejects dates JavaScript would roll over (2026-02-30 → March 2nd) by re-reading the local date part. */
const sameCalendarDay = (s: string, time: number): boolean => {
  const local = new Date(time + offsetMinutes(s) * 60_000).toISOString()
  return local.slice(0, 10) === s.slice(0, 10)
}

export const OccurredAt = Schema.String.check(
  Schema.isPattern(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/),
  Schema.makeFilter(
    (s: string) =>
      isCalendarValid(s) ||
      "must be a real date-time from 1900-01-01T00:00:00Z to 9999-12-31T23:59:59Z, offset within ±14:00",
    approximateJsonSchema({ format: "date-time" })
  )
).annotate({
  description:
    "ISO 8601 date-time with a zone (offset within ±14:00), from 1900-01-01T00:00:00Z to 9999-12-31T23:59:59Z; " +
    "defaults to the time of the request.",
  examples: ["2026-11-25T10:00:00Z"]
})

export const Event = Schema.Struct({
  id: EventId,
  type: Schema.String,
  data: Schema.NullOr(Schema.Record(Schema.String, JsonValue)).annotate({
    description: "The data as published; `null` once expunged (`DELETE /v1/events/{id}/data`)."
  }),
  occurredAt: Schema.String,
  createdAt: Schema.String,
  expungedAt: Schema.NullOr(Schema.String).annotate({
    description: "When the data was expunged (ISO 8601); `null` while the event keeps its data."
  })
}).annotate({
  identifier: "Event",
  examples: [
    {
      id: EventId.make("evt_01JD0000000000000000000000"),
      type: "order.created",
      data: { orderId: "o_123", amount: 4200 },
      occurredAt: "2026-11-25T10:00:00.000Z",
      createdAt: "2026-11-25T10:00:00.120Z",
      expungedAt: null
    }
  ]
})
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

/** An event to store: `data` is the publisher's `data` member as sent, minified (see JsonText). */
export interface NewEvent {
  readonly type: string
  readonly data: JsonText
  readonly occurredAt?: string
  /** The `Deprecation` header the publish answers with (its type is deprecated in the catalog), kept for replays. */
  readonly deprecation?: string
}

/**
 * An event as stored: `data` is the JSON text the publisher sent. It is delivered and returned as that text, never
 * parsed and serialised again, so member order, number text and string escapes reach the receiver unchanged. Once
 * expunged, `data` is null and `expungedAt` says since when.
 */
export interface StoredEvent {
  readonly id: EventId
  readonly type: string
  readonly data: JsonText | null
  readonly occurredAt: string
  readonly createdAt: string
  readonly expungedAt: string | null
}

/** What a publish answers: the stored event and the number of deliveries queued for it. */
export interface Publication {
  readonly event: StoredEvent
  readonly deliveriesQueued: number
  /** The `Deprecation` header value, when the type was deprecated in the catalog at publication. */
  readonly deprecation?: string
}
