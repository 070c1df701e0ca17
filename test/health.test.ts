import { assert, describe, it, layer } from "@effect/vitest"
import { Effect } from "effect"
import { Unhealthy } from "../src/api/SystemApi.ts"
import { DatabaseProxy, testServerBehindProxy } from "./support/databaseProxy.ts"
import { apiClient, createTenant, request } from "./support/http.ts"
import { inMemoryTracing, type OtlpRequest, spansOf } from "./support/inMemoryTracing.ts"
import { poll } from "./support/poll.ts"
import { expectProblem } from "./support/problems.ts"
import { TestDatabaseLive } from "./support/testDatabase.ts"
import { startTestServer, TestServer, testServer } from "./support/testServer.ts"
import { slack } from "./support/timing.ts"

const getStatus = (path: string) =>
  Effect.map(request(path), (response) => ({
    status: response.status,
    body: JSON.parse(response.text) as Record<string, unknown>
  }))

layer(testServer())("health endpoints with the database up", (it) => {
  it.effect("livez, readyz and healthz answer 200 through the typed client", () =>
    Effect.gen(function* () {
      const api = yield* apiClient()
      assert.deepStrictEqual(yield* api.livez(), { status: "pass" })
      assert.deepStrictEqual(yield* api.readyz(), { status: "ready" })
      const health = yield* api.healthz()
      assert.strictEqual(health.status, "pass")
      assert.strictEqual(health.checks.database.status, "up")
      assert.isAtLeast(health.checks.database.latencyMs, 0)
      assert.match(health.version, /^\d+\.\d+\.\d+/)
      assert.isAbove(health.uptimeSeconds, 0)
    })
  )

  it.effect("/openapi.json documents the probes with their responses, under the build's version", () =>
    Effect.gen(function* () {
      const { baseUrl } = yield* TestServer
      const response = yield* Effect.promise(() => fetch(`${baseUrl}/openapi.json`))
      const document = (yield* Effect.promise(() => response.json())) as {
        info: { version: string }
        paths: Record<string, { get?: { responses: Record<string, unknown> } }>
      }
      // The document's version is the build's, the one /healthz reports.
      assert.strictEqual(document.info.version, (yield* (yield* apiClient()).healthz()).version)
      assert.deepStrictEqual(Object.keys(document.paths["/livez"]?.get?.responses ?? {}), ["200"])
      assert.sameMembers(Object.keys(document.paths["/readyz"]?.get?.responses ?? {}), ["200", "503"])
      assert.sameMembers(Object.keys(document.paths["/healthz"]?.get?.responses ?? {}), ["200", "503"])
    })
  )

  it.effect("/openapi.json declares the 503 of an unreachable database on every /v1 and /admin operation", () =>
    Effect.gen(function* () {
      const document = JSON.parse((yield* request("/openapi.json")).text) as {
        paths: Record<string, Record<string, { responses?: Record<string, unknown> }>>
      }
      const served = Object.entries(document.paths).filter(([path]) => /^\/(v1|admin)\//.test(path))
      assert.isAtLeast(served.length, 8)
      for (const [path, operations] of served) {
        for (const [method, operation] of Object.entries(operations)) {
          assert.property(operation.responses ?? {}, "503", `${method.toUpperCase()} ${path}`)
        }
      }
    })
  )
})

const untilStatus = (path: string, expected: number) =>
  poll(`${path} to answer ${expected}`, getStatus(path), (r) => r.status === expected, { intervalMs: 50 })

layer(testServerBehindProxy, { excludeTestServices: true })("health endpoints with the database down", (it) => {
  it.effect("readyz and healthz report 503 while the database is gone, livez stays 200, all recover", () =>
    Effect.gen(function* () {
      const proxy = yield* DatabaseProxy
      assert.strictEqual((yield* getStatus("/readyz")).status, 200)

      proxy.cut()
      const ready = yield* untilStatus("/readyz", 503)
      assert.strictEqual(ready.body.title, "Service Unavailable")
      assert.strictEqual(ready.body.detail, "The database is not answering.")
      const health = yield* getStatus("/healthz")
      assert.strictEqual(health.status, 503)
      assert.strictEqual(health.body.status, "fail")
      const checks = health.body.checks as { database: { status: string } }
      assert.strictEqual(checks.database.status, "down")
      // The 503s are the contract's errors: the typed client decodes them.
      const api = yield* apiClient()
      const notReady = yield* Effect.flip(api.readyz())
      assert.strictEqual(notReady._tag, "ServiceUnavailable")
      const unhealthy = yield* Effect.flip(api.healthz())
      assert.instanceOf(unhealthy, Unhealthy)
      if (unhealthy instanceof Unhealthy) assert.strictEqual(unhealthy.checks.database.status, "down")
      assert.strictEqual((yield* getStatus("/livez")).status, 200)

      proxy.restore()
      yield* untilStatus("/readyz", 200)
      assert.strictEqual((yield* getStatus("/healthz")).body.status, "pass")
    })
  )

  it.effect("the API answers 503 problems with Retry-After while the database is gone, the contract's error", () =>
    Effect.gen(function* () {
      const proxy = yield* DatabaseProxy
      yield* untilStatus("/readyz", 200)
      const tenant = yield* createTenant("Outage")
      // The key is looked up (and cached) while the database is up: the route's own query meets the outage.
      assert.strictEqual((yield* request("/v1/endpoints", { bearer: tenant.apiKey })).status, 200)
      proxy.cut()
      yield* untilStatus("/readyz", 503)
      for (const path of ["/v1/endpoints", "/v1/events", "/admin/tenants"]) {
        const response = yield* request(path, { bearer: tenant.apiKey })
        const body = expectProblem(response, 503)
        assert.strictEqual(body.title, "Service Unavailable", path)
        assert.strictEqual(response.headers.get("retry-after"), "5", path)
      }
      // The typed client decodes it as the declared error.
      const failure = yield* Effect.flip((yield* apiClient(tenant.apiKey)).endpoints.list({ query: {} }))
      assert.strictEqual(failure._tag, "ServiceUnavailable")
      proxy.restore()
      yield* untilStatus("/readyz", 200)
      assert.strictEqual((yield* request("/v1/endpoints", { bearer: tenant.apiKey })).status, 200)
    })
  )

  it.effect(
    "a database that goes silent: readyz says so within its 2 s probe deadline, not the driver's cancel time",
    () =>
      Effect.gen(function* () {
        const proxy = yield* DatabaseProxy
        yield* untilStatus("/readyz", 200)
        proxy.stall()
        // The last answer may be reused for up to a second; the next probe hangs and is given up after 2 s. The
        // driver would take its own 5 s to cancel the statement on top: that wait is not the probe's.
        const started = Date.now()
        const ready = yield* untilStatus("/readyz", 503)
        const waited = Date.now() - started
        assert.strictEqual(ready.body.detail, "The database is not answering.")
        // At most 1 s of reuse + the 2 s deadline, with room for the machine; the driver's cancel would add its 5 s.
        assert.isBelow(waited, 3_000 + slack(500), `503 after ${waited} ms`)
        proxy.restore()
        yield* untilStatus("/readyz", 200)
      })
  )
})

describe("health endpoints under a flood", () => {
  it.live("hundreds of concurrent /healthz and /readyz cost about one database probe a second, never two at once", () =>
    Effect.gen(function* () {
      const requests: Array<OtlpRequest> = []
      const server = yield* startTestServer({ tracing: inMemoryTracing(requests) })
      const probe = (path: string) =>
        Effect.promise(async () => {
          const response = await fetch(`${server.baseUrl}${path}`, { signal: AbortSignal.timeout(10_000) })
          await response.text()
          return response.status
        })
      const started = Date.now()
      // 600 probes in 3 waves of 200 concurrent requests, about half a second apart.
      const statuses: Array<number> = []
      for (let wave = 0; wave < 3; wave++) {
        const waveStart = Date.now()
        statuses.push(
          ...(yield* Effect.forEach(
            Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? "/healthz" : "/readyz")),
            probe,
            { concurrency: "unbounded" }
          ))
        )
        const rest = 500 - (Date.now() - waveStart)
        if (rest > 0) yield* Effect.sleep(rest)
      }
      const elapsedSeconds = (Date.now() - started) / 1000
      assert.isTrue(
        statuses.every((status) => status === 200),
        String(statuses.filter((s) => s !== 200))
      )
      // The shutdown flushes the spans still buffered.
      yield* server.shutdown
      const probes = spansOf(requests).filter((span) => span.name === "DatabaseHealth.check")
      assert.isAtLeast(probes.length, 1)
      assert.isAtMost(probes.length, Math.ceil(elapsedSeconds) + 1, `${probes.length} probes in ${elapsedSeconds} s`)
      const ordered = [...probes].sort((a, b) =>
        Number(BigInt(a.startTimeUnixNano ?? "0") - BigInt(b.startTimeUnixNano ?? "0"))
      )
      for (let i = 1; i < ordered.length; i++) {
        const previousEnd = BigInt(ordered[i - 1]?.endTimeUnixNano ?? "0")
        assert.isTrue(BigInt(ordered[i]?.startTimeUnixNano ?? "0") >= previousEnd, "two probes in flight at once")
      }
    }).pipe(Effect.scoped, Effect.provide(TestDatabaseLive))
  )
})
