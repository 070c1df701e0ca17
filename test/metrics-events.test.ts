import { assert, describe, layer } from "@effect/vitest"
import { Duration, Effect, Fiber } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { SqlClient } from "effect/sql"
import { inject } from "vitest"
import { fingerprintOf } from "../src/http/Idempotency.ts"
import { testEncryptionKeysEnv } from "./support/appConfig.ts"
import { fastWorker } from "./support/deliveryApi.ts"
import { apiClient, createTenant, request } from "./support/http.ts"
import { type Exposition, gaugeOf, samplesOf, scrape, scrapeUntil, scrapeUrl, sumOf } from "./support/metrics.ts"
import { poll } from "./support/poll.ts"
import { freePort } from "./support/ports.ts"
import { startService, stopService } from "./support/processes.ts"
import { answer, makeReceiver } from "./support/receiver.ts"
import { SharedDatabase, testServerWithSql } from "./support/sharedDatabase.ts"
import { TestDatabase } from "./support/testDatabase.ts"
import { testServer } from "./support/testServer.ts"

/**
 * Each metric of README's table moves when its event happens, read from `GET /metrics` of the real server (real
 * receivers on 127.0.0.1, the real database). Counts are deltas from a scrape taken before, so each test stands alone.
 * Also elsewhere: rate limiting (rate-limit.test.ts), breaker transitions (delivery-resilience.test.ts), connections
 * (connection-limits.test.ts), the outbox gauges (metrics-outbox.test.ts); see README "Metrics".
 */

const outcomes = ["success", "failure", "gone", "timeout", "network_error", "rejected"] as const

/** `after - before` of the summed samples of `name` with `labels`. */
const delta = (
  before: Exposition,
  after: Exposition,
  name: string,
  labels: Readonly<Record<string, string>> = {}
): number => sumOf(after, name, labels) - sumOf(before, name, labels)

const deliveryTimeout = Duration.millis(500)

layer(
  testServerWithSql({
    config: {
      // One attempt each: every delivery ends with exactly one outcome.
      delivery: fastWorker({ timeout: deliveryTimeout, maxAttempts: 1 })
    }
  }),
  { excludeTestServices: true }
)("delivery metrics", (it) => {
  it.effect(
    "webhook_delivery_attempts_total and _duration_seconds by outcome, webhook_delivery_lag_seconds from publication",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const ok = yield* makeReceiver((_, __, res) => answer(res, 200))
        const failing = yield* makeReceiver((_, __, res) => answer(res, 500))
        const gone = yield* makeReceiver((_, __, res) => answer(res, 410))
        // Never answers: the attempt times out (the receiver's connections close with the scope).
        const silent = yield* makeReceiver(() => undefined)
        const closedPort = yield* Effect.promise(freePort)

        // One tenant, one endpoint per outcome: one event fans out to all six.
        const tenant = yield* createTenant("Metrics deliveries")
        const api = yield* apiClient(tenant.apiKey)
        const endpointAt = (url: string) =>
          api.endpoints.create({ payload: { url } }).pipe(
            Effect.map((e) => e.id),
            Effect.orDie
          )
        for (const url of [ok.url, failing.url, gone.url, silent.url, `http://127.0.0.1:${closedPort}/hook`]) {
          yield* endpointAt(url)
        }
        // Registered while allowed; by the time of sending its port is one the URL policy refuses (SSH): rejected.
        const refused = yield* endpointAt(ok.url)
        yield* sql`UPDATE endpoints SET url = 'http://127.0.0.1:22/hook' WHERE id = ${refused}`.pipe(Effect.orDie)

        // The lag runs from the event's creation: an event created an hour ago, due now, for a receiver that answers.
        const late = yield* createTenant("Metrics lag")
        const lateApi = yield* apiClient(late.apiKey)
        const lateEndpoint = yield* lateApi.endpoints.create({ payload: { url: ok.url } }).pipe(Effect.orDie)

        const before = yield* scrape
        yield* sql`
          WITH ev AS (
            INSERT INTO events (id, tenant_id, type, data, occurred_at, created_at)
            VALUES ('evt_' || codex_ulid(), ${late.tenantId}, 'lag.test', '{}', now() - interval '1 hour',
                    now() - interval '1 hour')
            RETURNING id
          )
          INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id)
          SELECT 'dlv_' || codex_ulid(), ${late.tenantId}, ev.id, ${lateEndpoint.id} FROM ev`.pipe(Effect.orDie)
        const published = yield* api.events
          .publish({ payload: { type: "order.created", data: { n: 1 } } })
          .pipe(Effect.orDie)
        assert.strictEqual(published.deliveriesQueued, 6)

        const expected: Record<(typeof outcomes)[number], number> = {
          success: 2,
          failure: 1,
          gone: 1,
          timeout: 1,
          network_error: 1,
          rejected: 1
        }
        // The lag is observed once the success is recorded, just after the attempt is counted: wait for both.
        const after = yield* scrapeUntil(
          "one attempt per outcome (two successes), and two lags",
          (e) =>
            outcomes.every((o) => delta(before, e, "webhook_delivery_attempts_total", { outcome: o }) >= expected[o]) &&
            delta(before, e, "webhook_delivery_lag_seconds_count") >= 2,
          20_000
        )
        for (const outcome of outcomes) {
          assert.strictEqual(
            delta(before, after, "webhook_delivery_attempts_total", { outcome }),
            expected[outcome],
            outcome
          )
          assert.strictEqual(
            delta(before, after, "webhook_delivery_duration_seconds_count", { outcome }),
            expected[outcome],
            `duration of ${outcome}`
          )
        }
        // The timed-out attempt lasted the whole DELIVERY_TIMEOUT.
        assert.isAtLeast(
          delta(before, after, "webhook_delivery_duration_seconds_sum", { outcome: "timeout" }),
          Duration.toSeconds(deliveryTimeout) - 0.01
        )

        // Two successes: the fresh event within seconds, the hour-old one above 3600 s.
        const lag = (labels: Record<string, string>, name = "webhook_delivery_lag_seconds_bucket") =>
          delta(before, after, name, labels)
        assert.strictEqual(lag({}, "webhook_delivery_lag_seconds_count"), 2)
        assert.strictEqual(lag({ le: "60" }), 1)
        assert.strictEqual(lag({ le: "3600" }), 1)
        assert.strictEqual(lag({ le: "21600" }), 2)
        assert.isAtLeast(lag({}, "webhook_delivery_lag_seconds_sum"), 3600)
        assert.strictEqual(ok.requests.length, 2)
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )
})

let keys = 0
const freshKey = () => `metrics-${Date.now()}-${++keys}`

layer(
  testServerWithSql({
    config: { idempotency: { ttl: Duration.minutes(5), lockTimeout: Duration.seconds(60), required: true } }
  }),
  { excludeTestServices: true }
)("idempotency metrics (IDEMPOTENCY_REQUIRED=true)", (it) => {
  it.effect(
    "idempotency_requests_total: new, replayed (re-rendered and stored replays), mismatch, in_progress, missing",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const tenant = yield* createTenant("Metrics idempotency")
        const publish = (key: string | undefined, body: unknown) =>
          request("/v1/events", {
            bearer: tenant.apiKey,
            json: body,
            ...(key === undefined ? {} : { headers: { "idempotency-key": key } })
          })
        const body = { type: "order.created", data: { n: 1 } }
        const before = yield* scrape

        const key = freshKey()
        assert.strictEqual((yield* publish(key, body)).status, 202) // new
        const replay = yield* publish(key, body) // replayed
        assert.strictEqual(replay.status, 202)
        assert.strictEqual(replay.headers.get("idempotent-replayed"), "true")
        assert.strictEqual((yield* publish(key, { ...body, data: { n: 2 } })).status, 422) // mismatch
        assert.strictEqual((yield* publish(undefined, body)).status, 400) // missing
        // A key another request holds right now, claimed exactly as a request in flight leaves it: in_progress.
        const held = freshKey()
        const raw = new TextEncoder().encode(JSON.stringify(body))
        yield* sql`
        INSERT INTO idempotency_keys (scope, key, fingerprint, method, path, state, lock_token, expires_at)
        VALUES (${tenant.tenantId}, ${held}, ${fingerprintOf("POST", "/v1/events", raw)}, 'POST', '/v1/events',
                'in_progress', 'someone-else', now() + interval '5 minutes')`.pipe(Effect.orDie)
        assert.strictEqual((yield* publish(held, body)).status, 409)
        // A route whose response is stored and replayed as stored (not re-rendered by its handler): new, then replayed.
        const endpointKey = freshKey()
        const createEndpoint = () =>
          request("/v1/endpoints", {
            bearer: tenant.apiKey,
            json: { url: "http://127.0.0.1:9999/hook" },
            headers: { "idempotency-key": endpointKey }
          })
        assert.strictEqual((yield* createEndpoint()).status, 201)
        const storedReplay = yield* createEndpoint()
        assert.strictEqual(storedReplay.status, 201)
        assert.strictEqual(storedReplay.headers.get("idempotent-replayed"), "true")

        const after = yield* scrape
        const expected: Record<string, number> = { new: 2, replayed: 2, mismatch: 1, missing: 1, in_progress: 1 }
        for (const [outcome, count] of Object.entries(expected)) {
          assert.strictEqual(delta(before, after, "idempotency_requests_total", { outcome }), count, outcome)
        }
      })
  )
})

/** A route that answers when the test says so: a request in flight for as long as the test needs. */
let releaseSlow: () => void = () => undefined
const SlowRoute = HttpRouter.add(
  "GET",
  "/test/slow",
  Effect.promise(
    () =>
      new Promise<void>((resolve) => {
        releaseSlow = resolve
      })
  ).pipe(Effect.as(HttpServerResponse.text("done")))
)

layer(testServer({ extraRoutes: SlowRoute }), { excludeTestServices: true })("request and process metrics", (it) => {
  it.effect("http_requests_in_flight counts a request while it runs; http_requests_total and the duration after", () =>
    Effect.gen(function* () {
      const before = yield* scrape
      const slow = yield* Effect.forkChild(request("/test/slow"))
      // The scrape itself is in flight too.
      yield* scrapeUntil("the slow request in flight", (e) => gaugeOf(e, "http_requests_in_flight") === 2)
      releaseSlow()
      assert.strictEqual((yield* Fiber.join(slow)).status, 200)
      const after = yield* scrapeUntil("the slow request done", (e) => gaugeOf(e, "http_requests_in_flight") === 1)
      const labels = { method: "GET", route: "/test/slow", status_code: "200" }
      assert.strictEqual(delta(before, after, "http_requests_total", labels), 1)
      assert.strictEqual(delta(before, after, "http_request_duration_seconds_count", labels), 1)
      assert.strictEqual(delta(before, after, "http_request_duration_seconds_bucket", { ...labels, le: "+Inf" }), 1)
    })
  )

  it.effect("process_* and nodejs_* are the process's own and move with its work", () =>
    Effect.gen(function* () {
      const before = yield* scrape
      for (let i = 0; i < 50; i++) assert.strictEqual((yield* request("/livez")).status, 200)
      const after = yield* scrape
      assert.isAbove(delta(before, after, "process_cpu_seconds_total"), 0)
      const now = Date.now() / 1000
      const started = gaugeOf(after, "process_start_time_seconds") ?? 0
      assert.isAtMost(Math.abs(started - (now - process.uptime())), 5, "the start time of this process")
      for (const name of ["process_resident_memory_bytes", "process_open_fds", "nodejs_heap_size_used_bytes"]) {
        assert.isAbove(sumOf(after, name), 0, name)
      }
      // Read by the alerts and the dashboard (values depend on timing and GC: present is what can be asserted).
      assert.lengthOf(samplesOf(after, "nodejs_eventloop_lag_p99_seconds"), 1)
      assert.strictEqual(after.types.get("nodejs_gc_duration_seconds"), "histogram")
    })
  )
})

describe("npm run worker", () => {
  /** `npm run worker` with METRICS_PORT; on PostgreSQL on the test server's database, else on a PGlite of its own. */
  const startWorker = Effect.gen(function* () {
    const database = yield* TestDatabase
    const shared = yield* SharedDatabase
    const port = yield* Effect.promise(freePort)
    yield* Effect.acquireRelease(
      Effect.promise(() =>
        startService(
          "src/worker.ts",
          {
            ...process.env,
            APP_ENV: "development",
            LOG_FORMAT: "json",
            DATABASE_URL: database.kind === "postgres" ? shared.url : "",
            PGLITE_DIR: "memory://",
            DELIVERY_POLL_INTERVAL: "200 millis",
            ENCRYPTION_KEYS: testEncryptionKeysEnv,
            METRICS_PORT: String(port)
          },
          (entry) => (entry.message === "metrics listening" ? true : undefined)
        )
      ),
      (service) => Effect.promise(() => stopService(service))
    )
    return `http://127.0.0.1:${port}/metrics`
  })

  layer(testServerWithSql(), { excludeTestServices: true })("a worker process with METRICS_PORT", (it) => {
    it.effect(
      "serves its own /metrics: the outbox gauges and the attempt counters",
      () =>
        Effect.gen(function* () {
          const exposition = yield* scrapeUrl(yield* startWorker)
          assert.strictEqual(gaugeOf(exposition, "webhook_deliveries_pending"), 0)
          assert.strictEqual(gaugeOf(exposition, "webhook_outbox_oldest_age_seconds"), 0)
          assert.strictEqual(exposition.types.get("webhook_delivery_attempts_total"), "counter")
        }).pipe(Effect.scoped),
      { timeout: 60_000 }
    )

    // PGlite cannot be shared with another process: there the worker embeds its own database, with nothing to send.
    it.effect.skipIf(inject("testDatabase").kind === "pglite")(
      "counts the attempts it made in its own /metrics, not in the API's (needs a PostgreSQL server)",
      () =>
        Effect.gen(function* () {
          const workerMetrics = yield* startWorker
          const before = yield* scrapeUrl(workerMetrics)
          // The API publishes (its own worker is off); the worker process sends and counts.
          const receiver = yield* makeReceiver((_, __, res) => answer(res, 204))
          const tenant = yield* createTenant("Metrics worker process")
          const api = yield* apiClient(tenant.apiKey)
          yield* api.endpoints.create({ payload: { url: receiver.url } }).pipe(Effect.orDie)
          yield* api.events.publish({ payload: { type: "order.created", data: { n: 1 } } }).pipe(Effect.orDie)
          const after = yield* poll(
            "the worker process's attempt in its /metrics",
            scrapeUrl(workerMetrics),
            (e) =>
              delta(before, e, "webhook_delivery_attempts_total", { outcome: "success" }) === 1 &&
              delta(before, e, "webhook_delivery_lag_seconds_count") === 1,
            {
              timeoutMs: 20_000,
              show: (e) =>
                e.text
                  .split("\n")
                  .filter((l) => l.startsWith("webhook_"))
                  .join("\n")
            }
          )
          assert.strictEqual(delta(before, after, "webhook_delivery_lag_seconds_count"), 1)
          assert.strictEqual(receiver.requests.length, 1)
          // Not in the API's: that process sent nothing.
          assert.strictEqual(sumOf(yield* scrape, "webhook_delivery_attempts_total", { outcome: "success" }), 0)
        }).pipe(Effect.scoped),
      { timeout: 60_000 }
    )
  })
})
