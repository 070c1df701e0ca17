/**
 * An endpoint's event filter: empty = every event; otherwise exact types or `prefix.*` wildcards, where `order.*`
 * matches `order.created` and `order.item.added` but not `order` itself. The publishing transaction evaluates the
 * same rule in SQL (EndpointsRepo): keep the two in step.
 */
export const matchesEventType = (filter: ReadonlyArray<string>, type: string): boolean =>
  filter.length === 0 ||
  filter.some((pattern) => (pattern.endsWith(".*") ? type.startsWith(pattern.slice(0, -1)) : pattern === type))

/** A filter entry: an event type, or an event-type prefix ending in `.*`. */
export const eventTypePattern = /^(?:[A-Za-z0-9_.-]{1,128}|[A-Za-z0-9_.-]{1,126}\.\*)$/
