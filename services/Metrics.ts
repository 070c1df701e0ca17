import { Context, type Effect, type Option } from "effect"
import type { OutboxState } from "./OutboxStats.ts"

/**
 * The HTTP methods that become label values; anything else a client sends is counted as `_OTHER` (the OpenTelemetry
 * convention), so a client cannot mint label values.
 */
export type HttpMethodLabel = "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" | "_OTHER"

/** Whose quota a request counts against: the tenant's (authenticated /v1) or its client IP's (the rest). */
export type RateLimitPolicy = "tenant" | "ip"

/** Outcome of a rate-limit check; `store_error` = the store did not answer (RATE_LIMIT_ON_STORE_ERROR applied). */
export type RateLimitOutcome = "allowed" | "limited" | "store_error"

/** Outcome of an Idempotency-Key lookup (issue: idempotency). */
export type IdempotencyOutcome = "new" | "replayed" | "in_progress" | "mismatch" | "missing"

/** Outcome of one webhook delivery attempt (issue: delivery engine). */
export type DeliveryOutcome = "success" | "failure" | "timeout" | "network_error" | "rejected" | "gone"

export type BreakerState = "closed" | "open" | "half_open"

/**
 * Prometheus metrics of the process: one prom-client registry, written by the edge middleware and the hooks below,
 * rendered by `GET /metrics`. Label values are closed sets (route templates, method names, status codes, the unions
 * above): raw paths, tenant, endpoint and request ids never become labels.
 */
export interface MetricsShape {
  /** `text/plain; version=0.0.4; charset=utf-8` */
  readonly contentType: string
  /** The exposition text of every registered metric. */
  readonly render: Effect.Effect<string>

  /** A request has started (`http_requests_in_flight` + 1). */
  readonly requestStarted: () => void
  /** A request has ended, whatever its outcome (`http_requests_in_flight` - 1). */
  readonly requestEnded: () => void
  /** One finished request: `http_requests_total` and `http_request_duration_seconds`. */
  readonly requestFinished: (method: string, route: string, status: number, seconds: number) => void
  /** The API listener accepted a connection (`http_connections_open` + 1). */
  readonly connectionOpened: () => void
  /** One of its connections closed (`http_connections_open` - 1). */
  readonly connectionClosed: () => void
  /** A connection over HTTP_MAX_CONNECTIONS was closed at once (`http_connections_dropped_total`). */
  readonly connectionDropped: () => void

  // Written by the rate limiter, the idempotency middleware, the delivery worker and the endpoint circuits. Their
  // labelled series are exported at 0 from the start, so rate() and ratios work before the first event.
  /** `rate_limit_decisions_total{policy,outcome}` */
  readonly rateLimitDecision: (policy: RateLimitPolicy, outcome: RateLimitOutcome) => void
  /** `idempotency_requests_total{outcome}` */
  readonly idempotencyOutcome: (outcome: IdempotencyOutcome) => void
  /** `webhook_delivery_attempts_total{outcome}` and `webhook_delivery_duration_seconds{outcome}` */
  readonly deliveryAttempt: (outcome: DeliveryOutcome, seconds: number) => void
  /** `webhook_delivery_lag_seconds`: from the event's creation to a successful delivery. */
  readonly deliveryLag: (seconds: number) => void
  /** `circuit_breaker_transitions_total{from,to}` (never labelled by endpoint). */
  readonly breakerTransition: (from: BreakerState, to: BreakerState) => void
  /** `circuit_breakers_open`: endpoints whose circuit is open right now, as seen by this replica. */
  readonly breakersOpen: (count: number) => void
  /**
   * `webhook_deliveries_pending` and `webhook_outbox_oldest_age_seconds`, set from the database before each scrape is
   * rendered (OutboxStats). None (the database did not answer; or no database, as in unit tests): both series have no
   * sample until the next Some.
   */
  readonly outbox: (state: Option.Option<OutboxState>) => void
}

export class Metrics extends Context.Service<Metrics, MetricsShape>()("codex/Metrics") {}
