import { Effect, Layer, Option } from "effect"
import * as Prom from "prom-client"
import { type HttpMethodLabel, Metrics, type MetricsShape } from "../services/Metrics.ts"
import { pendingCountCap } from "./OutboxStatsLive.ts"

/** OpenTelemetry's HTTP server duration buckets (seconds). */
export const httpDurationBuckets = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]
const deliveryDurationBuckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30]
const deliveryLagBuckets = [0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 3600, 21600, 86400]

const knownMethods: ReadonlySet<string> = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
export const methodLabel = (method: string): HttpMethodLabel =>
  knownMethods.has(method) ? (method as HttpMethodLabel) : "_OTHER"

type HttpLabel = "method" | "route" | "status_code"

interface Series {
  readonly labels: Readonly<Record<HttpLabel, string>>
  count: number
  sum: number
  /** Observations per bucket (not cumulative); the last slot is above the largest bound. */
  readonly buckets: Array<number>
}

/** Request counts and durations per (method, route template, status): the key space is bounded (see methodLabel). */
class HttpSeries {
  readonly series = new Map<string, Series>()

  record(method: string, route: string, status: number, seconds: number): void {
    const key = `${method} ${status} ${route}`
    let series = this.series.get(key)
    if (series === undefined) {
      series = {
        labels: { method: methodLabel(method), route, status_code: String(status) },
        count: 0,
        sum: 0,
        buckets: new Array<number>(httpDurationBuckets.length + 1).fill(0)
      }
      this.series.set(key, series)
    }
    series.count++
    series.sum += seconds
    let bucket = 0
    while (bucket < httpDurationBuckets.length && seconds > (httpDurationBuckets[bucket] ?? 0)) bucket++
    series.buckets[bucket] = (series.buckets[bucket] ?? 0) + 1
  }
}

/** `http_requests_total`, read from the series when scraped. */
class HttpRequestsCounter extends Prom.Counter<HttpLabel> {
  readonly source: HttpSeries
  constructor(source: HttpSeries, registers: Array<Prom.Registry>) {
    super({
      name: "http_requests_total",
      help: "HTTP requests answered, by method, route template and status code.",
      labelNames: ["method", "route", "status_code"],
      registers
    })
    this.source = source
  }
  override async get() {
    const base = await super.get()
    return { ...base, values: [...this.source.series.values()].map((s) => ({ labels: s.labels, value: s.count })) }
  }
}

const durationHelp =
  "Time from the request reaching the application to its response, by method, route template and status code."

/** `http_request_duration_seconds` (OTel buckets), read from the series when scraped. */
class HttpDurationHistogram extends Prom.Histogram<HttpLabel | "le"> {
  readonly source: HttpSeries
  /** An unregistered, never observed twin: the metadata prom-client expects from `get()`. */
  readonly empty: Prom.Histogram<HttpLabel | "le">
  constructor(source: HttpSeries, registers: Array<Prom.Registry>) {
    super({
      name: "http_request_duration_seconds",
      help: durationHelp,
      labelNames: ["method", "route", "status_code"],
      buckets: httpDurationBuckets,
      registers
    })
    this.source = source
    this.empty = new Prom.Histogram({ name: "http_request_duration_seconds", help: durationHelp, registers: [] })
  }
  /** The registry renders histograms through this (prom-client internals), so it is answered from the series too. */
  readonly getForPromString = () => this.get()
  override async get() {
    const base = await this.empty.get()
    const name = base.name
    const values: Array<{
      labels: Partial<Record<HttpLabel | "le", string | number>>
      value: number
      metricName: string
    }> = []
    for (const s of this.source.series.values()) {
      let cumulative = 0
      httpDurationBuckets.forEach((le, i) => {
        cumulative += s.buckets[i] ?? 0
        values.push({ labels: { ...s.labels, le }, value: cumulative, metricName: `${name}_bucket` })
      })
      values.push({ labels: { ...s.labels, le: "+Inf" }, value: s.count, metricName: `${name}_bucket` })
      values.push({ labels: s.labels, value: s.sum, metricName: `${name}_sum` })
      values.push({ labels: s.labels, value: s.count, metricName: `${name}_count` })
    }
    return { ...base, values }
  }
}

/**
 * A gauge whose value can be unknown: then it is exported without a sample (its HELP and TYPE only). A made-up 0
 * would read as "no backlog" exactly when the database cannot tell.
 */
class OptionalGauge extends Prom.Gauge {
  current: Option.Option<number> = Option.none()
  override async get() {
    const base = await super.get()
    return {
      ...base,
      values: Option.match(this.current, { onNone: () => [], onSome: (value) => [{ labels: {}, value }] })
    }
  }
}

export interface MetricsOptions {
  /** prom-client's process and Node.js metrics (`process_*`, `nodejs_*`). */
  readonly defaultMetrics: boolean
}

/** A registry with every codex-api metric, and the service writing to it. */
export const makeMetrics = (options: MetricsOptions): MetricsShape & { readonly registry: Prom.Registry } => {
  const registry = new Prom.Registry()
  if (options.defaultMetrics) {
    Prom.collectDefaultMetrics({ register: registry })
    // prom-client names three gauges `*_total`, which promtool rejects (only counters end in _total). Their per-type
    // breakdowns stay (`nodejs_active_handles{type}` ...): `sum()` of one is the removed total.
    for (const name of [
      "nodejs_active_handles_total",
      "nodejs_active_requests_total",
      "nodejs_active_resources_total"
    ]) {
      registry.removeSingleMetric(name)
    }
  }
  const registers = [registry]

  // The per-request path is plain arithmetic on a record per (method, route, status); prom-client only reads the
  // records when scraped. (prom-client's own `inc`/`observe` hash the label object on every call, even on a child
  // from `labels()`: measurably slower at tens of thousands of requests per second.)
  const http = new HttpSeries()
  new HttpRequestsCounter(http, registers)
  new HttpDurationHistogram(http, registers)
  let inFlight = 0
  new Prom.Gauge({
    name: "http_requests_in_flight",
    help: "HTTP requests being handled right now.",
    registers,
    collect() {
      this.set(inFlight)
    }
  })
  let openConnections = 0
  new Prom.Gauge({
    name: "http_connections_open",
    help: "Connections open on the API listener right now.",
    registers,
    collect() {
      this.set(openConnections)
    }
  })
  const droppedConnections = new Prom.Counter({
    name: "http_connections_dropped_total",
    help: "Connections closed as soon as they were accepted, because HTTP_MAX_CONNECTIONS were already open.",
    registers
  })
  const rateLimit = new Prom.Counter({
    name: "rate_limit_decisions_total",
    help: "Rate-limit checks, by policy (tenant, ip) and outcome (allowed, limited, store_error).",
    labelNames: ["policy", "outcome"] as const,
    registers
  })
  const idempotency = new Prom.Counter({
    name: "idempotency_requests_total",
    help: "Idempotency-Key checks, by outcome (new, replayed, in_progress, mismatch, missing).",
    labelNames: ["outcome"] as const,
    registers
  })
  const attempts = new Prom.Counter({
    name: "webhook_delivery_attempts_total",
    help: "Webhook delivery attempts, by outcome (success, failure, timeout, network_error, rejected, gone).",
    labelNames: ["outcome"] as const,
    registers
  })
  const attemptDuration = new Prom.Histogram({
    name: "webhook_delivery_duration_seconds",
    help: "Duration of webhook delivery attempts, by outcome.",
    labelNames: ["outcome"] as const,
    buckets: deliveryDurationBuckets,
    registers
  })
  const lag = new Prom.Histogram({
    name: "webhook_delivery_lag_seconds",
    help: "Time from an event being published to its successful delivery.",
    buckets: deliveryLagBuckets,
    registers
  })
  const transitions = new Prom.Counter({
    name: "circuit_breaker_transitions_total",
    help: "Circuit breaker state changes seen by this replica, by from and to state.",
    labelNames: ["from", "to"] as const,
    registers
  })
  const open = new Prom.Gauge({
    name: "circuit_breakers_open",
    help: "Endpoints whose circuit breaker is open.",
    registers
  })
  // Database-wide, read at scrape time: every replica reports the same values (aggregate with max(), never sum()).
  const pending = new OptionalGauge({
    name: "webhook_deliveries_pending",
    help: `Pending deliveries in the whole outbox, due or scheduled (counted up to ${pendingCountCap}); max() across replicas.`,
    registers
  })
  const oldest = new OptionalGauge({
    name: "webhook_outbox_oldest_age_seconds",
    help: "Seconds the oldest due pending delivery has waited, now() - min(next_attempt_at), 0 when none is due; max() across replicas.",
    registers
  })

  // Outcome counters start at 0, so rate() and ratios work before the first event.
  for (const policy of ["tenant", "ip"] as const) {
    for (const outcome of ["allowed", "limited", "store_error"] as const) rateLimit.inc({ policy, outcome }, 0)
  }
  for (const outcome of ["new", "replayed", "in_progress", "mismatch", "missing"] as const)
    idempotency.inc({ outcome }, 0)
  for (const outcome of ["success", "failure", "timeout", "network_error", "rejected", "gone"] as const) {
    attempts.inc({ outcome }, 0)
    attemptDuration.zero({ outcome })
  }
  // Every transition Effect's CircuitBreaker makes.
  for (const [from, to] of [
    ["closed", "open"],
    ["open", "half_open"],
    ["half_open", "closed"],
    ["half_open", "open"]
  ] as const) {
    transitions.inc({ from, to }, 0)
  }

  return {
    registry,
    contentType: registry.contentType,
    render: Effect.promise(() => registry.metrics()),
    requestStarted: () => {
      inFlight++
    },
    requestEnded: () => {
      inFlight--
    },
    requestFinished: (method, route, status, seconds) => http.record(method, route, status, seconds),
    connectionOpened: () => {
      openConnections++
    },
    connectionClosed: () => {
      openConnections--
    },
    connectionDropped: () => droppedConnections.inc(),
    rateLimitDecision: (policy, outcome) => rateLimit.inc({ policy, outcome }),
    idempotencyOutcome: (outcome) => idempotency.inc({ outcome }),
    deliveryAttempt: (outcome, seconds) => {
      attempts.inc({ outcome })
      attemptDuration.observe({ outcome }, seconds)
    },
    deliveryLag: (seconds) => lag.observe(seconds),
    breakerTransition: (from, to) => transitions.inc({ from, to }),
    breakersOpen: (count) => open.set(count),
    outbox: (state) => {
      pending.current = Option.map(state, (s) => s.pending)
      oldest.current = Option.map(state, (s) => s.oldestAgeSeconds)
    }
  }
}

/** The process registry, with prom-client's process and Node.js metrics. */
export const MetricsLive: Layer.Layer<Metrics> = Layer.sync(Metrics, () => makeMetrics({ defaultMetrics: true }))
