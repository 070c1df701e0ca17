import { spawnSync } from "node:child_process"
import { createServer as createNetServer } from "node:net"
import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import { HttpRouter } from "effect/http"
import { createTenant, request, type WireResponse } from "./support/http.ts"
import { scrape, sumOf } from "./support/metrics.ts"
import { parsedLogs } from "./support/observedServer.ts"
import { poll } from "./support/poll.ts"
import { TestDatabaseLive } from "./support/testDatabase.ts"
import { startTestServer, TestServer, testServer } from "./support/testServer.ts"

/**
 * Request correlation, the access log, secret redaction and the Prometheus metrics, on the real server. Tracing is
 * covered in tracing.test.ts.
 */

const adminToken = "adm_0bs3rvab1l1ty-t0ken-that-must-never-be-logged"
const bodyLimitBytes = 1024
const defectMessage = "observability test defect"

/** A route that dies, for the 500 case. */
const TestRoutes = HttpRouter.add("GET", "/test/boom", Effect.die(new Error(defectMessage)))

const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/

const withHeaders = (path: string, headers: Record<string, string>) => request(path, { headers })

const logEntries = Effect.gen(function* () {
  const server = yield* TestServer
  return parsedLogs(server.logs)
})

/** The access line of the request whose response carried `requestId` (written just before the response). */
const accessLineOf = (requestId: string) =>
  Effect.gen(function* () {
    const server = yield* TestServer
    const lines = yield* poll(
      `the access line of ${requestId}`,
      Effect.sync(() => parsedLogs(server.logs).filter((e) => e.message === "request" && e.requestId === requestId)),
      (found) => found.length > 0
    )
    assert.lengthOf(lines, 1, `one access line for ${requestId}`)
    return lines[0] ?? {}
  })

const responseRequestId = (response: WireResponse): string => {
  const id = response.headers.get("x-request-id")
  assert.isString(id, `x-request-id on a ${response.status}`)
  assert.match(id ?? "", requestIdPattern)
  return id ?? ""
}

layer(
  testServer({
    config: { bodyLimitBytes, adminToken: Option.some(Redacted.make(adminToken)) },
    extraRoutes: TestRoutes
  }),
  {
    excludeTestServices: true
  }
)("request correlation and the access log", (it) => {
  it.effect("X-Request-Id on 200/400/401/404/413/500 responses, the same id in their access line", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<readonly [number, Effect.Effect<WireResponse, never, TestServer>]> = [
        [200, request("/livez")],
        [400, request("/admin/tenants", { bearer: adminToken, raw: "{not json" })],
        [401, request("/v1/events")],
        [404, request("/no/such/route/42")],
        [413, request("/admin/tenants", { bearer: adminToken, json: { name: "x".repeat(2 * bodyLimitBytes) } })],
        [500, request("/test/boom")]
      ]
      for (const [status, request] of cases) {
        const response = yield* request
        assert.strictEqual(response.status, status, response.text)
        const id = responseRequestId(response)
        // /livez is a probe: not at info by default, so no access line to find at the default level.
        if (status === 200) continue
        const line = yield* accessLineOf(id)
        assert.strictEqual(line.status, status)
        assert.strictEqual(line.level, status >= 500 ? "error" : "info")
      }
    })
  )

  it.effect("a valid incoming X-Request-Id is kept; an invalid one is replaced", () =>
    Effect.gen(function* () {
      const kept = yield* withHeaders("/no/such/route", { "x-request-id": "client-abc.123:XYZ_-" })
      assert.strictEqual(kept.headers.get("x-request-id"), "client-abc.123:XYZ_-")
      assert.strictEqual((yield* accessLineOf("client-abc.123:XYZ_-")).status, 404)
      for (const invalid of ["has space", "x".repeat(129), "semi;colon", "slash/ed", 'quote"d']) {
        const response = yield* withHeaders("/no/such/route", { "x-request-id": invalid })
        assert.notStrictEqual(responseRequestId(response), invalid)
      }
    })
  )

  it.effect("every log line of a request carries its request id (the defect's error line too)", () =>
    Effect.gen(function* () {
      const response = yield* withHeaders("/test/boom", { "x-request-id": "trace-me-500" })
      assert.strictEqual(response.status, 500)
      yield* accessLineOf("trace-me-500")
      const entries = yield* logEntries
      const messages = entries.filter((e) => e.requestId === "trace-me-500").map((e) => e.message)
      assert.includeMembers(messages, ["unhandled defect while serving a request", "request"])
      // No line of a request is written without its id: every defect line there is carries one.
      const defects = entries.filter((e) => e.message === "unhandled defect while serving a request")
      assert.isNotEmpty(defects)
      for (const defect of defects) assert.isString(defect.requestId, JSON.stringify(defect).slice(0, 300))
    })
  )

  it.effect("access line fields: template route, path without query, tenant, client, duration", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Access log tenant", { adminToken })
      const response = yield* withHeaders("/v1/events/evt_doesnotexist?cursor=abc", {
        authorization: `Bearer ${tenant.apiKey}`,
        "user-agent": "codex-test/1.0",
        "x-request-id": "fields-check-1"
      })
      assert.strictEqual(response.status, 404, response.text)
      const line = yield* accessLineOf("fields-check-1")
      assert.sameMembers(Object.keys(line), [
        "time",
        "level",
        "message",
        "requestId",
        "method",
        "route",
        "path",
        "status",
        "durationMs",
        "tenantId",
        "clientIp",
        "userAgent"
      ])
      assert.strictEqual(line.level, "info")
      assert.strictEqual(line.method, "GET")
      assert.strictEqual(line.route, "/v1/events/:id")
      assert.strictEqual(line.path, "/v1/events/evt_doesnotexist")
      assert.strictEqual(line.tenantId, tenant.tenantId)
      assert.strictEqual(line.userAgent, "codex-test/1.0")
      assert.match(String(line.clientIp), /127\.0\.0\.1/)
      assert.isNumber(line.durationMs)
      assert.isAtLeast(Number(line.durationMs), 0)
      assert.isFalse(Number.isNaN(Date.parse(String(line.time))))

      const unmatched = yield* withHeaders("/v1/evnts/123", { "x-request-id": "fields-check-2" })
      assert.strictEqual(unmatched.status, 404)
      const unmatchedLine = yield* accessLineOf("fields-check-2")
      assert.strictEqual(unmatchedLine.route, "unmatched")
      assert.notProperty(unmatchedLine, "tenantId")
    })
  )

  it.effect("probes are not logged at info by default", () =>
    Effect.gen(function* () {
      for (const probe of ["/livez", "/readyz", "/healthz", "/metrics"]) {
        const response = yield* withHeaders(probe, { "x-request-id": `probe-${probe.slice(1)}` })
        assert.isBelow(response.status, 500, probe)
      }
      // A later request's line is written, so the probes' lines would have been too.
      yield* withHeaders("/no/such/route", { "x-request-id": "after-probes" })
      yield* accessLineOf("after-probes")
      const probeLines = (yield* logEntries).filter((e) => String(e.requestId).startsWith("probe-"))
      assert.deepStrictEqual(probeLines, [])
    })
  )

  it.effect("secrets never reach the log: API key, admin token, webhook secret, Authorization, request bodies", () =>
    Effect.gen(function* () {
      const { baseUrl } = yield* TestServer
      const tenantBody = { name: "Redaction tenant body-marker-5f1c" }
      const created = yield* request("/admin/tenants", { bearer: adminToken, json: tenantBody })
      assert.strictEqual(created.status, 201, created.text)
      const { apiKey } = JSON.parse(created.text) as { apiKey: { key: string } }
      const key = apiKey.key

      const endpointBody = {
        url: `${baseUrl}/hooks/endpoint-marker-8d2e`,
        eventTypes: ["order.*"],
        description: "description-marker-77aa"
      }
      const endpoint = yield* request("/v1/endpoints", { bearer: key, json: endpointBody })
      assert.strictEqual(endpoint.status, 201, endpoint.text)
      const endpointId = (JSON.parse(endpoint.text) as { id: string }).id
      const secretResponse = yield* request(`/v1/endpoints/${endpointId}/secret`, { bearer: key })
      assert.strictEqual(secretResponse.status, 200, secretResponse.text)
      const { secret } = JSON.parse(secretResponse.text) as { secret: string }
      assert.match(secret, /^whsec_/)

      const eventBody = { type: "order.created", data: { orderId: "order-marker-c0ffee", card: "4111111111111111" } }
      const published = yield* request("/v1/events", { bearer: key, json: eventBody })
      assert.strictEqual(published.status, 202, published.text)
      // Failures log too: a wrong key and a wrong admin token.
      const wrongKey = `${key.slice(0, -4)}zzzz`
      assert.strictEqual((yield* request("/v1/events", { bearer: wrongKey })).status, 401)
      assert.strictEqual(
        (yield* request("/admin/tenants", { bearer: `${adminToken}-wrong`, json: tenantBody })).status,
        401
      )
      const last = yield* withHeaders("/no/such/route", { "x-request-id": "redaction-last" })
      assert.strictEqual(last.status, 404)
      yield* accessLineOf("redaction-last")

      const { logs } = yield* TestServer
      const everything = logs.join("\n")
      assert.isAbove(logs.length, 5)
      const forbidden = [
        key,
        key.slice(3, 20),
        wrongKey,
        adminToken,
        secret,
        secret.slice(6, 26),
        "Bearer",
        "authorization",
        "body-marker-5f1c",
        "endpoint-marker-8d2e",
        "description-marker-77aa",
        "order-marker-c0ffee",
        "4111111111111111"
      ]
      for (const value of forbidden) {
        assert.notInclude(everything.toLowerCase(), value.toLowerCase(), `the log contains ${value}`)
      }
    })
  )
})

layer(testServer({ config: { accessLogProbes: true } }), { excludeTestServices: true })(
  "ACCESS_LOG_PROBES=true",
  (it) => {
    it.effect("probes are logged at info", () =>
      Effect.gen(function* () {
        const response = yield* withHeaders("/livez", { "x-request-id": "probe-logged" })
        assert.strictEqual(response.status, 200)
        const line = yield* accessLineOf("probe-logged")
        assert.strictEqual(line.route, "/livez")
        assert.strictEqual(line.level, "info")
      })
    )
  }
)

layer(testServer({ config: { accessLog: false } }), { excludeTestServices: true })("ACCESS_LOG=false", (it) => {
  it.effect("no access lines, the request id still on the response", () =>
    Effect.gen(function* () {
      const response = yield* withHeaders("/no/such/route", { "x-request-id": "not-logged" })
      assert.strictEqual(response.headers.get("x-request-id"), "not-logged")
      // The response has been written, so its line would have been too.
      const { logs } = yield* TestServer
      // The server does log into this sink (its startup line): the access line alone is missing.
      assert.isTrue(
        logs.some((line) => line.includes('"message":"listening"')),
        logs.join("\n")
      )
      assert.isFalse(logs.some((line) => line.includes('"message":"request"')))
      assert.isFalse(
        logs.some((line) => line.includes("not-logged")),
        "no line of that request under another name"
      )
    })
  )
})

// ---- metrics ---------------------------------------------------------------------------------------------------------

describe("metrics", () => {
  layer(testServer({ config: { adminToken: Option.some(Redacted.make(adminToken)) } }), { excludeTestServices: true })(
    "GET /metrics",
    (it) => {
      it.effect("names, labels and values after a scripted set of requests", () =>
        Effect.gen(function* () {
          const tenant = yield* createTenant("Metrics tenant", { adminToken })
          for (let i = 0; i < 3; i++) assert.strictEqual((yield* request("/livez")).status, 200)
          for (let i = 0; i < 2; i++) assert.strictEqual((yield* request("/v1/events")).status, 401)
          const requestIds: Array<string> = []
          for (const path of ["/unknown/a1b2c3", "/v1/events/evt_zzz/nope", `/tenant-id-in-path/${tenant.tenantId}`]) {
            const response = yield* request(path)
            assert.strictEqual(response.status, 404)
            requestIds.push(response.headers.get("x-request-id") ?? "")
          }
          const missing = yield* request("/v1/events/evt_metrics_missing", { bearer: tenant.apiKey })
          assert.strictEqual(missing.status, 404)
          requestIds.push(missing.headers.get("x-request-id") ?? "")
          assert.strictEqual((yield* request("/livez", { method: "PROPFIND" })).status, 405)

          // (200 and the Prometheus content type asserted by `scrape`)
          const exposition = yield* scrape
          const samples = exposition.samples

          const total = (labels: Record<string, string>) => sumOf(exposition, "http_requests_total", labels)
          assert.strictEqual(total({ method: "GET", route: "/livez", status_code: "200" }), 3)
          assert.strictEqual(total({ method: "GET", route: "/v1/events", status_code: "401" }), 2)
          assert.strictEqual(total({ method: "GET", route: "unmatched", status_code: "404" }), 3)
          assert.strictEqual(total({ method: "GET", route: "/v1/events/:id", status_code: "404" }), 1)
          assert.strictEqual(total({ method: "POST", route: "/admin/tenants", status_code: "201" }), 1)
          assert.strictEqual(total({ method: "_OTHER", route: "unmatched", status_code: "405" }), 1)
          // The scrape itself is in flight while it renders.
          assert.strictEqual(sumOf(exposition, "http_requests_in_flight"), 1)

          // Histogram: the OTel buckets, and one observation per request.
          const les = samples
            .filter((s) => s.name === "http_request_duration_seconds_bucket" && s.labels.route === "/livez")
            .map((s) => s.labels.le)
          // OpenTelemetry's default HTTP duration buckets (README "Metrics"), written out, not read from the code.
          assert.deepStrictEqual(les, [
            ...["0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1", "2.5", "5", "7.5", "10"],
            "+Inf"
          ])
          assert.strictEqual(
            sumOf(exposition, "http_request_duration_seconds_count", { route: "/livez", status_code: "200" }),
            3
          )

          // Only templates and "unmatched" as routes; no ids, raw paths or request ids in any label value.
          const routes = new Set(samples.filter((s) => s.labels.route !== undefined).map((s) => s.labels.route))
          for (const route of routes) {
            assert.isTrue(route === "unmatched" || route?.startsWith("/"), String(route))
            assert.notMatch(String(route), /a1b2c3|evt_|nope|tenant-id-in-path/)
          }
          const labelValues = samples.flatMap((s) => Object.values(s.labels)).join("\n")
          for (const value of [tenant.tenantId, tenant.apiKey, ...requestIds]) assert.notInclude(labelValues, value)

          // Every family is exported before its first event, and the process metrics the dashboard and alerts use. That
          // each one moves when its event happens is asserted where the event is: metrics-events (deliveries,
          // idempotency, requests), metrics-outbox (the outbox gauges), delivery-resilience (breakers), rate-limit,
          // connection-limits.
          for (const name of [
            "http_connections_open",
            "http_connections_dropped_total",
            "rate_limit_decisions_total",
            "idempotency_requests_total",
            "webhook_delivery_attempts_total",
            "webhook_delivery_duration_seconds_count",
            "webhook_delivery_lag_seconds_count",
            "circuit_breaker_transitions_total",
            "circuit_breakers_open",
            "webhook_deliveries_pending",
            "webhook_outbox_oldest_age_seconds",
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "nodejs_heap_size_used_bytes",
            "nodejs_eventloop_lag_p99_seconds"
          ]) {
            assert.isTrue(exposition.text.includes(`# TYPE ${name.replace(/_count$/, "")} `), `${name} is exported`)
          }
          assert.strictEqual(sumOf(exposition, "webhook_delivery_attempts_total", { outcome: "success" }), 0)
        })
      )

      // Prometheus' own linter on a full scrape (the series above, with values), apart: it needs promtool.
      it.effect(
        "promtool check metrics finds nothing",
        () =>
          Effect.gen(function* () {
            const scrape = yield* request("/metrics")
            assert.strictEqual(scrape.status, 200)
            const promtool = spawnSync("promtool", ["check", "metrics"], { input: scrape.text, encoding: "utf8" })
            assert.isUndefined(promtool.error, "promtool (Debian package prometheus) must be installed")
            assert.strictEqual(promtool.status, 0, promtool.stdout + promtool.stderr)
            assert.strictEqual((promtool.stdout + promtool.stderr).trim(), "", "promtool lint findings")
          }),
        { tags: ["promtool"] }
      )
    }
  )

  it.live("METRICS_PORT: /metrics on its own port (only there), closed on shutdown", () =>
    Effect.gen(function* () {
      const port = yield* Effect.promise(
        () =>
          new Promise<number>((resolve) => {
            const probe = createNetServer().listen(0, "127.0.0.1", () => {
              const address = probe.address()
              probe.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
            })
          })
      )
      const server = yield* startTestServer({ config: { metricsPort: Option.some(port) } })
      const scrape = yield* Effect.promise(() => fetch(`http://127.0.0.1:${port}/metrics`))
      assert.strictEqual(scrape.status, 200)
      assert.strictEqual(scrape.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8")
      assert.include(yield* Effect.promise(() => scrape.text()), "# TYPE http_requests_total counter")
      const other = yield* Effect.promise(() => fetch(`http://127.0.0.1:${port}/livez`))
      assert.strictEqual(other.status, 404)
      const onApiPort = yield* Effect.promise(() => fetch(`${server.baseUrl}/metrics`))
      assert.strictEqual(onApiPort.status, 404)
      yield* server.shutdown
      const refused = yield* Effect.promise(() =>
        fetch(`http://127.0.0.1:${port}/metrics`).then(
          () => false,
          () => true
        )
      )
      assert.isTrue(refused, "the metrics listener is closed after shutdown")
    }).pipe(Effect.provide(TestDatabaseLive), Effect.scoped)
  )

  layer(testServer({ config: { metricsEnabled: false } }), { excludeTestServices: true })(
    "METRICS_ENABLED=false",
    (it) => {
      it.effect("no /metrics route", () =>
        Effect.gen(function* () {
          assert.strictEqual((yield* request("/metrics")).status, 404)
        })
      )
    }
  )
})
