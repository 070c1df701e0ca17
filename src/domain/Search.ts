import type { Option } from "effect"
import type { DeliveryStatus } from "./Delivery.ts"
import { firstIdAt } from "./Ids.ts"

/** A creation-time window: at or after `since`, before `until`. */
export interface TimeRange {
  readonly since: Option.Option<Date>
  readonly until: Option.Option<Date>
}

/** `GET /v1/deliveries`'s filters, each optional. */
export interface DeliverySearch extends TimeRange {
  readonly status: Option.Option<DeliveryStatus>
  readonly endpointId: Option.Option<string>
  readonly eventType: Option.Option<string>
}

/** `GET /v1/events`'s filters: an event type or `prefix.*`, and a time window. */
export interface EventSearch extends TimeRange {
  readonly type: Option.Option<string>
}

/**
 * How far apart the clocks that make ids (each replica's) and `created_at` (the database's) may be. A time window is
 * applied twice: on `created_at`, exactly, and on the ids, widened by this much, so that an index on the ids serves it
 * without a row whose id came from a clock behind or ahead of the database's being left out.
 */
export const idClockSkewMs = 5 * 60_000

/** The id range that holds every row created in `[since, until)`, widened by `idClockSkewMs` on both sides. */
export const idRange = (prefix: string, range: TimeRange) => ({
  from: range.since._tag === "Some" ? firstIdAt(prefix, range.since.value.getTime() - idClockSkewMs) : undefined,
  below: range.until._tag === "Some" ? firstIdAt(prefix, range.until.value.getTime() + idClockSkewMs) : undefined
})
