import { Duration, Schema } from "effect"
import { EndpointHealth } from "./Endpoint.ts"
import { OccurredAt } from "./Event.ts"

/** The window `GET /v1/endpoints/{id}/stats` reports on when the request names no `since`: the last 24 hours. */
export const defaultStatsPeriod = Duration.hours(24)

/** The window of a stats request: attempts started at or after `since`, up to `until` (the time of the request). */
export interface StatsWindow {
  readonly since: Date
  readonly until: Date
}

/**
 * The window of a request made at `now`: from `since` (ISO 8601, already checked by the contract) or, without one,
 * `defaultStatsPeriod` ago. `undefined` when `since` is after `now`: a window that has not begun.
 */
export const statsWindow = (since: string | undefined, now: Date): StatsWindow | undefined => {
  const from = since === undefined ? new Date(now.getTime() - Duration.toMillis(defaultStatsPeriod)) : new Date(since)
  return from.getTime() > now.getTime() ? undefined : { since: from, until: now }
}

/** `?since=` of the stats route: the contract's date-time, described for this route. */
export const StatsSince = OccurredAt.annotate({
  description:
    "Count the attempts started at or after this time (ISO 8601 with offset; not in the future). Default: 24 hours " +
    "before the request.",
  examples: ["2026-11-24T10:00:00Z"]
})

const count = (what: string) => Schema.Int.annotate({ description: what })

/** The attempts of the window, by `delivery_attempts.outcome` (see `DeliveryAttempt.outcome`). */
export const AttemptCounts = Schema.Struct({
  total: count("Every attempt of the window."),
  succeeded: count("The receiver answered 2xx."),
  failed: count("The receiver answered any other status (3xx included: redirects are not followed)."),
  gone: count("The receiver answered 410 Gone (the endpoint was disabled)."),
  timeout: count("No complete answer within the delivery timeout."),
  network_error: count("The connection failed (refused, reset, TLS, DNS)."),
  blocked: count("Nothing was sent: the URL resolved to an address the SSRF guard refuses.")
}).annotate({ identifier: "AttemptCounts" })

export const AttemptDurations = Schema.Struct({
  p50: Schema.NullOr(Schema.Number).annotate({
    description: "Median attempt duration in milliseconds (interpolated, as PostgreSQL `percentile_cont`)."
  }),
  p99: Schema.NullOr(Schema.Number).annotate({ description: "99th percentile attempt duration in milliseconds." })
}).annotate({
  identifier: "AttemptDurations",
  description: "Over the attempts of the window, whatever their outcome; both null when there were none."
})

const statsExample = {
  endpointId: "ep_01JD2Q8Y1ZK3W6V4N9B7C5X0RT",
  since: "2026-11-24T10:00:00.000Z",
  until: "2026-11-25T10:00:00.000Z",
  attempts: { total: 120, succeeded: 114, failed: 4, gone: 0, timeout: 1, network_error: 1, blocked: 0 },
  successRate: 0.95,
  durationMs: { p50: 84, p99: 1930.5 },
  lastSuccessAt: "2026-11-25T09:58:12.345Z",
  lastFailureAt: "2026-11-25T07:41:03.120Z",
  health: { circuit: "closed", openUntil: null }
} as const

/** `GET /v1/endpoints/{id}/stats`: how an endpoint's deliveries went over a window, and its circuit now. */
export const EndpointStats = Schema.Struct({
  endpointId: Schema.String,
  since: Schema.String.annotate({ description: "Start of the window (ISO 8601): attempts started at or after it." }),
  until: Schema.String.annotate({ description: "End of the window: the time of the request (ISO 8601)." }),
  attempts: AttemptCounts,
  successRate: Schema.NullOr(Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 1 }))).annotate({
    description: "`succeeded / total` over the window, 0..1; null when there were no attempts."
  }),
  durationMs: AttemptDurations,
  lastSuccessAt: Schema.NullOr(Schema.String).annotate({
    description: "The start of the endpoint's latest successful attempt ever (not only in the window); null if none."
  }),
  lastFailureAt: Schema.NullOr(Schema.String).annotate({
    description:
      "The start of the endpoint's latest unsuccessful attempt ever (any outcome but `succeeded`; not only in the " +
      "window); null if none."
  }),
  health: EndpointHealth
}).annotate({
  identifier: "EndpointStats",
  description:
    "Attempts of the endpoint's deliveries started in the window, by outcome, with their success rate and duration " +
    "percentiles; the latest success and failure ever; and the endpoint's circuit as it stands.",
  examples: [statsExample]
})
export type EndpointStats = typeof EndpointStats.Type
