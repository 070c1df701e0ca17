import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { HttpRouter } from "effect/http"
import { testRateLimit } from "./support/appConfig.ts"
import { fastWorker } from "./support/deliveryApi.ts"
import { baseTracing, inMemoryTracing, type OtlpRequest, type OtlpSpan, spansOf } from "./support/inMemoryTracing.ts"
import { parsedLogs } from "./support/observedServer.ts"
import { isDefined, poll } from "./support/poll.ts"
import { answer, makeReceiver } from "./support/receiver.ts"
import { TestDatabaseLive } from "./support/testDatabase.ts"
import { startTestServer } from "./support/testServer.ts"

/**
 * Traces, checked twice: in memory (the production tracer with an HTTP client that keeps each export instead of
 * sending it: every attribute, status and link), and end to end through the production layer (fetch, OTLP/HTTP JSON)
 * into a small OTLP/HTTP receiver on 127.0.0.1, flushed by the graceful shutdown.
 */

const incomingTraceId = "4bf92f3577b34da6a3ce929d0e0e4736"
const incomingParentId = "00f067aa0ba902b7"
const traceparent = `00-${incomingTraceId}-${incomingParentId}-01`

const TestRoutes = HttpRouter.add("GET", "/test/boom", Effect.die(new Error("tracing test defect")))

const spanKind = { server: 2, client: 3 } as const
const statusCode = { unset: 0, ok: 1, error: 2 } as const

const attrValue = (span: OtlpSpan | undefined, key: string): unknown => {
  const found = span?.attributes?.find((a) => a.key === key)
  return found === undefined ? undefined : Object.values(found.value)[0]
}

/** Does `span` descend from `ancestor` (through any intermediate spans)? */
const descendsFrom = (spans: ReadonlyArray<OtlpSpan>, span: OtlpSpan, ancestor: OtlpSpan): boolean => {
  const byId = new Map(spans.map((s) => [s.spanId, s]))
  let parent = span.parentSpanId
  while (parent !== undefined && parent !== "") {
    if (parent === ancestor.spanId) return true
    parent = byId.get(parent)?.parentSpanId
  }
  return false
}

const get = (baseUrl: string, path: string, headers: Record<string, string> = {}) =>
  Effect.promise(async () => {
    const response = await fetch(`${baseUrl}${path}`, { headers, signal: AbortSignal.timeout(10_000) })
    await response.text()
    return response
  })

describe("tracing, in memory", () => {
  it.live("server spans: name, attributes, status, incoming traceparent, SQL children, ids in the logs", () =>
    Effect.gen(function* () {
      const requests: Array<OtlpRequest> = []
      // Probes logged at info, so the /healthz request has an access line to check.
      const server = yield* startTestServer({
        extraRoutes: TestRoutes,
        tracing: inMemoryTracing(requests),
        config: { accessLogProbes: true }
      })
      const serverSpan = (requestId: string) =>
        poll(
          `the server span of ${requestId}`,
          Effect.sync(() =>
            spansOf(requests).find((s) => s.kind === spanKind.server && attrValue(s, "request.id") === requestId)
          ),
          isDefined
        )

      // 200 with an incoming traceparent, touching the database.
      const ok = yield* get(server.baseUrl, "/healthz?x=1", { traceparent, "x-request-id": "trace-200" })
      assert.strictEqual(ok.status, 200)
      const healthz = yield* serverSpan("trace-200")
      assert.isDefined(healthz)
      if (healthz === undefined) return
      assert.strictEqual(healthz.name, "GET /healthz")
      assert.strictEqual(healthz.traceId, incomingTraceId)
      assert.strictEqual(healthz.parentSpanId, incomingParentId)
      assert.strictEqual(attrValue(healthz, "http.request.method"), "GET")
      assert.strictEqual(attrValue(healthz, "http.route"), "/healthz")
      assert.strictEqual(attrValue(healthz, "url.path"), "/healthz")
      assert.strictEqual(attrValue(healthz, "url.scheme"), "http")
      assert.strictEqual(attrValue(healthz, "server.address"), "127.0.0.1")
      assert.isDefined(attrValue(healthz, "server.port"))
      assert.strictEqual(attrValue(healthz, "user_agent.original"), "node")
      assert.strictEqual(Number(attrValue(healthz, "http.response.status_code")), 200)
      assert.strictEqual(attrValue(healthz, "request.id"), "trace-200")
      assert.isDefined(attrValue(healthz, "client.address"))
      assert.strictEqual(healthz.status.code, statusCode.unset)
      const resource = requests[0]?.resourceSpans[0]?.resource?.attributes ?? []
      assert.deepInclude(resource, { key: "service.name", value: { stringValue: "codex-api-test" } })
      assert.deepInclude(resource, { key: "deployment.environment", value: { stringValue: "test" } })

      // SQL spans descend from the server span, in the same trace.
      const sqlSpans = yield* poll(
        "SQL spans below the /healthz span",
        Effect.sync(() =>
          spansOf(requests).filter(
            (s) =>
              s.kind === spanKind.client &&
              attrValue(s, "db.query.text") !== undefined &&
              descendsFrom(spansOf(requests), s, healthz)
          )
        ),
        (found) => found.length > 0
      )
      assert.isNotEmpty(sqlSpans, JSON.stringify(spansOf(requests).map((s) => [s.name, s.kind, s.parentSpanId])))
      for (const sql of sqlSpans) assert.strictEqual(sql.traceId, incomingTraceId)

      // The access line of the request names the same trace and span.
      const line = yield* poll(
        "the access line of trace-200",
        Effect.sync(() => parsedLogs(server.logs).find((e) => e.message === "request" && e.requestId === "trace-200")),
        isDefined
      )
      assert.strictEqual(line?.traceId, incomingTraceId)
      assert.strictEqual(line?.spanId, healthz.spanId)

      // 4xx: status unset; unknown route: the span is named by the method only; 5xx: error.
      assert.strictEqual((yield* get(server.baseUrl, "/v1/events", { "x-request-id": "trace-401" })).status, 401)
      const unauthorized = yield* serverSpan("trace-401")
      assert.strictEqual(unauthorized?.name, "GET /v1/events")
      assert.strictEqual(unauthorized?.status.code, statusCode.unset)
      assert.strictEqual(Number(attrValue(unauthorized, "http.response.status_code")), 401)

      assert.strictEqual((yield* get(server.baseUrl, "/no/such/7", { "x-request-id": "trace-404" })).status, 404)
      const unmatched = yield* serverSpan("trace-404")
      assert.strictEqual(unmatched?.name, "GET")
      assert.strictEqual(unmatched?.status.code, statusCode.unset)
      // No traceparent: a new root trace.
      assert.isTrue(unmatched?.parentSpanId === undefined || unmatched.parentSpanId === "")
      assert.notStrictEqual(unmatched?.traceId, incomingTraceId)

      assert.strictEqual((yield* get(server.baseUrl, "/test/boom", { "x-request-id": "trace-500" })).status, 500)
      const failed = yield* serverSpan("trace-500")
      assert.strictEqual(failed?.name, "GET /test/boom")
      assert.strictEqual(failed?.status.code, statusCode.error)
      const defectLine = parsedLogs(server.logs).find(
        (e) => e.requestId === "trace-500" && e.message === "unhandled defect while serving a request"
      )
      assert.strictEqual(defectLine?.traceId, failed?.traceId)
      yield* server.shutdown
    }).pipe(Effect.provide(TestDatabaseLive), Effect.scoped)
  )

  it.live(
    "a delivery attempt is a client span continuing the publishing request's trace, its traceparent sent on",
    () =>
      Effect.gen(function* () {
        const requests: Array<OtlpRequest> = []
        const receiver = yield* makeReceiver((_, __, res) => answer(res, 204))
        const server = yield* startTestServer({
          tracing: inMemoryTracing(requests),
          config: {
            delivery: fastWorker()
          }
        })
        const post = (path: string, body: unknown, headers: Record<string, string>) =>
          Effect.promise(async () => {
            const response = await fetch(`${server.baseUrl}${path}`, {
              method: "POST",
              headers: { "content-type": "application/json", ...headers },
              body: JSON.stringify(body),
              signal: AbortSignal.timeout(10_000)
            })
            return (await response.json()) as Record<string, unknown>
          })
        const created = (yield* post("/admin/tenants", { name: "Traced" }, {})) as { apiKey: { key: string } }
        const auth = { authorization: `Bearer ${created.apiKey.key}` }
        yield* post("/v1/endpoints", { url: `${receiver.url}?token=secret-in-query` }, auth)
        yield* post(
          "/v1/events",
          { type: "order.created", data: {} },
          { ...auth, traceparent, "x-request-id": "pub-1" }
        )

        const publish = yield* poll(
          "the server span of pub-1",
          Effect.sync(() =>
            spansOf(requests).find((s) => s.kind === spanKind.server && attrValue(s, "request.id") === "pub-1")
          ),
          isDefined
        )
        const deliver = yield* poll(
          "the webhook.deliver span",
          Effect.sync(() => spansOf(requests).find((s) => s.name === "webhook.deliver")),
          isDefined,
          { timeoutMs: 15_000 }
        )
        if (publish === undefined || deliver === undefined) return assert.fail("spans missing")
        assert.strictEqual(deliver.kind, spanKind.client)
        assert.strictEqual(deliver.traceId, incomingTraceId, "the publishing request's trace goes on")
        assert.isTrue(descendsFrom(spansOf(requests), deliver, publish) || deliver.parentSpanId === publish.spanId)
        assert.strictEqual(attrValue(deliver, "http.request.method"), "POST")
        assert.strictEqual(attrValue(deliver, "server.address"), "127.0.0.1")
        assert.strictEqual(Number(attrValue(deliver, "server.port")), Number(new URL(receiver.url).port))
        assert.strictEqual(attrValue(deliver, "url.full"), receiver.url, "no query string (it may hold a secret)")
        assert.strictEqual(Number(attrValue(deliver, "http.response.status_code")), 204)
        assert.strictEqual(Number(attrValue(deliver, "codex.delivery.attempt")), 1)
        const sent = receiver.requests[0]?.headers.traceparent
        assert.match(String(sent), new RegExp(`^00-${incomingTraceId}-[0-9a-f]{16}-01$`))
        yield* server.shutdown
      }).pipe(Effect.provide(TestDatabaseLive), Effect.scoped)
  )

  it.live("an unsampled incoming traceparent is honoured: nothing of that trace is exported", () =>
    Effect.gen(function* () {
      const requests: Array<OtlpRequest> = []
      const server = yield* startTestServer({ tracing: inMemoryTracing(requests) })
      const response = yield* get(server.baseUrl, "/healthz", {
        traceparent: `00-${incomingTraceId}-${incomingParentId}-00`
      })
      assert.strictEqual(response.status, 200)
      yield* get(server.baseUrl, "/livez", { "x-request-id": "sampled" })
      yield* poll(
        "the span of the sampled request",
        Effect.sync(() => spansOf(requests).find((s) => attrValue(s, "request.id") === "sampled")),
        isDefined
      )
      assert.isFalse(spansOf(requests).some((s) => s.traceId === incomingTraceId))
      yield* server.shutdown
    }).pipe(Effect.provide(TestDatabaseLive), Effect.scoped)
  )

  it.live("client.address is the client TRUST_PROXY resolves; the socket peer is network.peer.address", () =>
    Effect.gen(function* () {
      const requests: Array<OtlpRequest> = []
      const server = yield* startTestServer({
        tracing: inMemoryTracing(requests),
        config: { rateLimit: { ...testRateLimit, trustProxy: { _tag: "Cidrs", cidrs: ["127.0.0.1/32"] } } }
      })
      const spanOf = (requestId: string) =>
        poll(
          `the span of ${requestId}`,
          Effect.sync(() => spansOf(requests).find((s) => attrValue(s, "request.id") === requestId)),
          isDefined
        )
      yield* get(server.baseUrl, "/livez", { "x-request-id": "via-proxy", "x-forwarded-for": "203.0.113.9" })
      const proxied = yield* spanOf("via-proxy")
      assert.strictEqual(attrValue(proxied, "client.address"), "203.0.113.9")
      assert.strictEqual(attrValue(proxied, "network.peer.address"), "127.0.0.1")
      yield* get(server.baseUrl, "/livez", { "x-request-id": "direct" })
      const direct = yield* spanOf("direct")
      assert.strictEqual(attrValue(direct, "client.address"), "127.0.0.1")
      // The edge's note to the exporter is not exported.
      assert.isFalse(spansOf(requests).some((s) => s.attributes?.some((a) => a.key.startsWith("codex.client"))))
      yield* server.shutdown
    }).pipe(Effect.provide(TestDatabaseLive), Effect.scoped)
  )
})

// ---- end to end: OTLP/HTTP JSON into a receiver on 127.0.0.1 ---------------------------------------------------------

/** A minimal OTLP/HTTP receiver: records every JSON export request to /v1/traces. */
const startReceiver = Effect.acquireRelease(
  Effect.promise(
    () =>
      new Promise<{ server: Server; url: string; requests: Array<OtlpRequest>; contentTypes: Array<string> }>(
        (resolve) => {
          const requests: Array<OtlpRequest> = []
          const contentTypes: Array<string> = []
          const server = createServer((req, res) => {
            let body = ""
            req.setEncoding("utf8")
            req.on("data", (chunk: string) => {
              body += chunk
            })
            req.on("end", () => {
              if (req.method === "POST" && req.url === "/v1/traces") {
                contentTypes.push(String(req.headers["content-type"]))
                requests.push(JSON.parse(body) as OtlpRequest)
                res.writeHead(200, { "content-type": "application/json" }).end("{}")
              } else res.writeHead(404).end()
            })
          })
          server.listen(0, "127.0.0.1", () => {
            const { port } = server.address() as AddressInfo
            resolve({ server, url: `http://127.0.0.1:${port}`, requests, contentTypes })
          })
        }
      )
  ),
  ({ server }) => Effect.promise(() => new Promise<void>((resolve) => server.close(() => resolve())))
)

describe("tracing end to end (OTLP/HTTP JSON receiver)", () => {
  it.live("server and SQL spans reach the collector with the right links, flushed on shutdown", () =>
    Effect.gen(function* () {
      const receiver = yield* startReceiver
      const server = yield* startTestServer({
        config: {
          tracing: {
            ...baseTracing,
            tracesEndpoint: Option.some(`${receiver.url}/v1/traces`)
          }
        }
      })
      const response = yield* get(server.baseUrl, "/healthz", { traceparent, "x-request-id": "e2e-1" })
      assert.strictEqual(response.status, 200)
      assert.strictEqual(response.headers.get("x-request-id"), "e2e-1")
      // The batch processor would export within 5 s; the graceful shutdown must flush it at once.
      yield* server.shutdown
      const spans = receiver.requests.flatMap((r) =>
        r.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((s) => s.spans))
      )
      assert.isNotEmpty(receiver.contentTypes)
      assert.match(receiver.contentTypes[0] ?? "", /application\/json/)
      const resource = receiver.requests[0]?.resourceSpans[0]?.resource?.attributes ?? []
      assert.deepInclude(resource, { key: "service.name", value: { stringValue: "codex-api-test" } })

      const serverSpan = spans.find((s) => s.kind === 2 && attrValue(s, "request.id") === "e2e-1")
      assert.isDefined(serverSpan, JSON.stringify(spans.map((s) => s.name)))
      if (serverSpan === undefined) return
      assert.strictEqual(serverSpan.name, "GET /healthz")
      assert.strictEqual(serverSpan.traceId.toLowerCase(), incomingTraceId)
      assert.strictEqual(serverSpan.parentSpanId?.toLowerCase(), incomingParentId)
      assert.strictEqual(attrValue(serverSpan, "http.route"), "/healthz")

      const sqlSpans = spans.filter(
        (s) =>
          s.kind === spanKind.client &&
          attrValue(s, "db.query.text") !== undefined &&
          descendsFrom(spans, s, serverSpan)
      )
      assert.isNotEmpty(sqlSpans, JSON.stringify(spans.map((s) => [s.name, s.kind, s.parentSpanId])))
      for (const sql of sqlSpans) assert.strictEqual(sql.traceId, serverSpan.traceId)
    }).pipe(Effect.provide(TestDatabaseLive), Effect.scoped)
  )
})
