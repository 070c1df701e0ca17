import { Schema } from "effect"
import { isOperationalType } from "./OperationalEvents.ts"

/** Whether a type matches one filter entry: the type itself, or a `prefix.*` wildcard. */
export const matchesPattern = (pattern: string, type: string): boolean =>
  pattern.endsWith(".*") ? type.startsWith(pattern.slice(0, -1)) : pattern === type

/**
 * An endpoint's event filter: empty = every event; otherwise exact types or `prefix.*` wildcards, where `order.*`
 * matches `order.created` and `order.item.added` but not `order` itself. Operational events (`codex.*`) are received
 * only when named (an empty filter does not take them). The publishing statements evaluate the same rule in SQL
 * (layers/EventTypeFilterSql.ts, and the empty-filter rule in layers/EventsLive.ts): keep them in step.
 */
export const matchesEventType = (filter: ReadonlyArray<string>, type: string): boolean =>
  (filter.length === 0 && !isOperationalType(type)) || filter.some((pattern) => matchesPattern(pattern, type))

/** A filter entry: an event type, or an event-type prefix ending in `.*`. */
export const eventTypePattern = /^(?:[A-Za-z0-9_.-]{1,128}|[A-Za-z0-9_.-]{1,126}\.\*)$/

/** An event type or a `prefix.*` wildcard, as a filter entry or a list's `type` query takes it. */
export const EventTypePattern = Schema.String.check(
  Schema.isPattern(eventTypePattern, { message: "must be an event type or a `prefix.*`" })
)
