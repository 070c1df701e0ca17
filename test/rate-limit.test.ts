import { request as httpRequest } from "node:http"
import { assert, describe, it, layer } from "@effect/vitest"
import { Duration, Effect, Layer, Option, Redacted } from "effect"
import { TestClock } from "effect/testing"
import { inject } from "vitest"
import { RateLimitMemory } from "../layers/RateLimitLive.ts"
import type { RateLimitConfig } from "../services/AppConfig.ts"
import { RateLimit } from "../services/RateLimit.ts"
import { policyHeader, quotaExceededType, reducedCapacityType, stateHeader } from "../src/http/RateLimit.ts"
import { appConfigTest, testRateLimit } from "./support/appConfig.ts"
import { appProcess } from "./support/apps.ts"
import { callUrl, createTenantAt, type RequestOptions, requestAt, type WireResponse } from "./support/http.ts"
import { inMemoryTracing, type OtlpRequest, spansOf } from "./support/inMemoryTracing.ts"
import { type Exposition, scrapeUrl, seriesValue } from "./support/metrics.ts"
import { poll, pollPromise } from "./support/poll.ts"
import { freePort } from "./support/ports.ts"
import { expectProblem, problemBody } from "./support/problems.ts"
import { throwawayRedis } from "./support/redis.ts"
import { SharedDatabase, testServerWithSql } from "./support/sharedDatabase.ts"
import { TestDatabase, TestDatabaseLive } from "./support/testDatabase.ts"
import { startTestServer, TestServer } from "./support/testServer.ts"

// ---------------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------------

type Reply = WireResponse

/** A request from `ip`, as a proxy in front of the server says. */
const from = (ip: string): RequestOptions => ({ headers: { "x-forwarded-for": ip } })

/** A GET with its path sent exactly as written (fetch would normalise `/./`, and a URL object may re-encode). */
const rawGet = (baseUrl: string, path: string, bearer?: string) =>
  Effect.promise(
    () =>
      new Promise<Reply>((resolve, reject) => {
        const { hostname, port } = new URL(baseUrl)
        const headers: Record<string, string> = bearer === undefined ? {} : { authorization: `Bearer ${bearer}` }
        const req = httpRequest({ hostname, port, path, headers, timeout: 10_000 }, (res) => {
          let text = ""
          res.setEncoding("utf8").on("data", (chunk: string) => {
            text += chunk
          })
          res.on("end", () => {
            const replyHeaders = new Headers()
            for (const [name, value] of Object.entries(res.headers)) {
              if (typeof value === "string") replyHeaders.set(name, value)
            }
            resolve({ status: res.statusCode ?? 0, headers: replyHeaders, text })
          })
        })
        req.on("timeout", () => req.destroy(new Error(`no answer to GET ${path}`)))
        req.on("error", reject)
        req.end()
      })
  )

/** Every spelling of `GET /v1/events` that the router serves as that route (case, percent-encoding, slashes). */
const eventsSpellings: ReadonlyArray<string> = [
  "/V1/events",
  "/v1/EVENTS",
  "/V1/Events",
  "//v1/events",
  "/v1//events",
  "///v1///events",
  "/%761/events",
  "/v%31/events",
  "/%76%31/%65vents",
  "/v1/%45VENTS",
  "/v1/events/",
  "//V1//%65vents//"
]

/** `"ip";r=2;t=20` → { name, r, t }; `"ip";q=3;w=60` → { name, q, w }. */
const parseItem = (value: string | null): Record<string, string> => {
  assert.isNotNull(value)
  const [name = "", ...params] = (value ?? "").split(";")
  return Object.fromEntries([["name", name], ...params.map((p) => p.split("=") as [string, string])])
}

const remainingOf = (reply: Reply) => Number(parseItem(reply.headers.get("ratelimit")).r)
const resetOf = (reply: Reply) => Number(parseItem(reply.headers.get("ratelimit")).t)

const rateLimit = (overrides: Partial<RateLimitConfig>): RateLimitConfig => ({ ...testRateLimit, ...overrides })

/** The count of the rate limiter's decisions of one policy and outcome, in a scrape. */
const decisions = (exposition: Exposition, policy: string, outcome: string) =>
  seriesValue(exposition, "rate_limit_decisions_total", { policy, outcome })

// ---------------------------------------------------------------------------------------------------------------
// The header syntax and the store's window (TestClock)
// ---------------------------------------------------------------------------------------------------------------

describe("RateLimit headers (draft-ietf-httpapi-ratelimit-headers-10)", () => {
  it("policy and state items", () => {
    assert.strictEqual(policyHeader("tenant", { limit: 100, window: Duration.minutes(15) }), '"tenant";q=100;w=900')
    assert.strictEqual(stateHeader("ip", 42, 513), '"ip";r=42;t=513')
    assert.strictEqual(stateHeader("ip", -1, 3), '"ip";r=0;t=3')
  })
})

describe("memory store under TestClock", () => {
  it.effect("counts down across the window, refuses at the quota, and resets when the window has passed", () =>
    Effect.gen(function* () {
      const limits = yield* RateLimit
      const quota = { limit: 3, window: Duration.seconds(60) }
      const verdicts = []
      for (let i = 0; i < 3; i++) verdicts.push(yield* limits.consume("ip:198.51.100.1", quota))
      assert.deepStrictEqual(
        verdicts.map((v) => (v._tag === "Allowed" ? [v.remaining, Duration.toSeconds(v.resetAfter)] : v._tag)),
        // A fixed window: it opened with the first request and ends 60 s later, whatever follows.
        [
          [2, 60],
          [1, 60],
          [0, 60]
        ]
      )
      const refused = yield* limits.consume("ip:198.51.100.1", quota)
      assert.strictEqual(refused._tag, "Exceeded")
      if (refused._tag === "Exceeded") assert.strictEqual(Duration.toSeconds(refused.retryAfter), 60)
      // Another key has its own bucket.
      assert.strictEqual((yield* limits.consume("ip:198.51.100.2", quota))._tag, "Allowed")

      yield* TestClock.adjust("59 seconds")
      const stillRefused = yield* limits.consume("ip:198.51.100.1", quota)
      assert.strictEqual(stillRefused._tag, "Exceeded")
      if (stillRefused._tag === "Exceeded") assert.strictEqual(Duration.toSeconds(stillRefused.retryAfter), 1)

      yield* TestClock.adjust("1 second")
      const fresh = yield* limits.consume("ip:198.51.100.1", quota)
      assert.deepStrictEqual(fresh, { _tag: "Allowed", remaining: 2, resetAfter: Duration.seconds(60) })
    }).pipe(Effect.provide(RateLimitMemory.pipe(Layer.provide(appConfigTest()))))
  )
})

// ---------------------------------------------------------------------------------------------------------------
// Through the real server (memory store)
// ---------------------------------------------------------------------------------------------------------------

layer(TestDatabaseLive, { excludeTestServices: true })("rate limiting over HTTP", (it) => {
  it.effect("per client IP: headers across the window, then 429 problem+json with Retry-After; probes exempt", () =>
    Effect.gen(function* () {
      const server = yield* startTestServer({
        config: { rateLimit: rateLimit({ max: 3, window: Duration.seconds(60) }) }
      })
      const base = server.baseUrl
      // An unknown route: the router answers it on the error channel, and it is limited all the same.
      const replies = [
        yield* requestAt(base, "/nope"),
        yield* requestAt(base, "/nope"),
        yield* requestAt(base, "/openapi.json")
      ]
      assert.deepStrictEqual(
        replies.map((r) => r.status),
        [404, 404, 200]
      )
      for (const reply of replies) assert.strictEqual(reply.headers.get("ratelimit-policy"), '"ip";q=3;w=60')
      assert.deepStrictEqual(replies.map(remainingOf), [2, 1, 0])
      // t: seconds until the quota is back, the rest of the window opened by the first request (a loaded machine may
      // take a few seconds), never growing.
      replies.forEach((reply, i) => {
        assert.isAtMost(resetOf(reply), 60)
        assert.isAtLeast(resetOf(reply), 50)
        const previous = replies[i - 1]
        if (previous !== undefined) assert.isAtMost(resetOf(reply), resetOf(previous))
      })

      const refused = yield* requestAt(base, "/openapi.json")
      expectProblem(refused, 429, { type: quotaExceededType })
      const retryAfter = Number(refused.headers.get("retry-after"))
      assert.isAtLeast(retryAfter, 50)
      assert.isAtMost(retryAfter, 60)
      assert.strictEqual(refused.headers.get("ratelimit-policy"), '"ip";q=3;w=60')
      assert.strictEqual(remainingOf(refused), 0)
      assert.isAtLeast(retryAfter, resetOf(refused), "Retry-After is never earlier than t")
      // Still finished by the edge middleware: request id, security headers, access log.
      assert.isNotNull(refused.headers.get("x-request-id"))
      assert.strictEqual(refused.headers.get("x-content-type-options"), "nosniff")
      const accessLine = server.logs
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.requestId === refused.headers.get("x-request-id"))
      assert.strictEqual(accessLine?.status, 429)
      // Unauthenticated /v1 and /admin count against the same IP quota.
      assert.strictEqual((yield* requestAt(base, "/v1/events")).status, 429)
      assert.strictEqual((yield* requestAt(base, "/admin/tenants")).status, 429)

      for (const probe of ["/livez", "/readyz", "/healthz", "/metrics"]) {
        const reply = yield* requestAt(base, probe)
        assert.strictEqual(reply.status, 200, probe)
        assert.isNull(reply.headers.get("ratelimit"), probe)
        assert.isNull(reply.headers.get("ratelimit-policy"), probe)
      }
      const metrics = yield* scrapeUrl(`${base}/metrics`)
      assert.strictEqual(decisions(metrics, "ip", "allowed"), 3)
      assert.strictEqual(decisions(metrics, "ip", "limited"), 3)
      assert.strictEqual(decisions(metrics, "tenant", "allowed"), 0)
    }).pipe(Effect.scoped)
  )

  it.effect("per tenant: the tenant's own quota overrides the default; the tenant's bucket is not the IP's", () =>
    Effect.gen(function* () {
      const server = yield* startTestServer({
        config: { rateLimit: rateLimit({ max: 50, window: Duration.minutes(15) }) }
      })
      const base = server.baseUrl
      const small = yield* createTenantAt(base, "RL small", { rateLimit: { limit: 2, windowSeconds: 60 } })
      const regular = yield* createTenantAt(base, "RL default", { rateLimit: null })

      const first = yield* requestAt(base, "/v1/endpoints", { bearer: small.apiKey })
      const second = yield* requestAt(base, "/v1/events", { bearer: small.apiKey })
      assert.deepStrictEqual([first.status, second.status], [200, 200])
      assert.strictEqual(first.headers.get("ratelimit-policy"), '"tenant";q=2;w=60')
      assert.deepStrictEqual([remainingOf(first), remainingOf(second)], [1, 0])
      const refused = yield* requestAt(base, "/v1/endpoints", { bearer: small.apiKey })
      assert.strictEqual(refused.status, 429)
      problemBody(refused, { type: quotaExceededType })
      assert.isAtLeast(Number(refused.headers.get("retry-after")), 1)

      // Another tenant, on the default quota, from the same IP, is unaffected; so is the admin API (IP quota).
      const other = yield* requestAt(base, "/v1/endpoints", { bearer: regular.apiKey })
      assert.strictEqual(other.status, 200)
      assert.strictEqual(other.headers.get("ratelimit-policy"), '"tenant";q=50;w=900')
      assert.strictEqual(remainingOf(other), 49)
      const admin = yield* requestAt(base, "/admin/tenants")
      assert.strictEqual(admin.status, 200)
      assert.strictEqual(admin.headers.get("ratelimit-policy"), '"ip";q=50;w=900')
      // A wrong key on /v1 is an unauthenticated request: the IP's quota, then 401.
      const wrongKey = yield* requestAt(base, "/v1/endpoints", { bearer: `ck_${"x".repeat(43)}` })
      assert.strictEqual(wrongKey.status, 401)
      assert.strictEqual(wrongKey.headers.get("ratelimit-policy"), '"ip";q=50;w=900')

      const metrics = yield* scrapeUrl(`${base}/metrics`)
      assert.strictEqual(decisions(metrics, "tenant", "limited"), 1)
      assert.strictEqual(decisions(metrics, "tenant", "allowed"), 3)

      // Raising the quota through the admin API applies within the key cache's lifetime (5 s).
      const patched = yield* Effect.promise(() =>
        callUrl(base, `/admin/tenants/${small.tenantId}`, {
          method: "PATCH",
          json: { rateLimit: { limit: 10, windowSeconds: 60 } }
        })
      )
      assert.strictEqual(patched.status, 200, patched.text)
      assert.deepStrictEqual((JSON.parse(patched.text) as { rateLimit: unknown }).rateLimit, {
        limit: 10,
        windowSeconds: 60
      })
      const raised = yield* Effect.promise(() =>
        pollPromise(
          "the new quota to apply",
          () => callUrl(base, "/v1/endpoints", { bearer: small.apiKey }),
          (reply) => reply.headers.get("ratelimit-policy") === '"tenant";q=10;w=60',
          { timeoutMs: 15_000 }
        )
      )
      assert.strictEqual(raised.status, 200)

      // null returns the tenant to the default; nonsense is a 400 problem, not a 500.
      const reset = yield* Effect.promise(() =>
        callUrl(base, `/admin/tenants/${small.tenantId}`, { method: "PATCH", json: { rateLimit: null } })
      )
      assert.strictEqual(reset.status, 200, reset.text)
      assert.isNull((JSON.parse(reset.text) as { rateLimit: unknown }).rateLimit)
      // A rename leaves the quota alone; an unknown tenant is a 404 problem.
      yield* Effect.promise(() =>
        callUrl(base, `/admin/tenants/${regular.tenantId}`, {
          method: "PATCH",
          json: { rateLimit: { limit: 7, windowSeconds: 70 } }
        })
      )
      const renamed = yield* Effect.promise(() =>
        callUrl(base, `/admin/tenants/${regular.tenantId}`, { method: "PATCH", json: { name: "RL renamed" } })
      )
      assert.deepStrictEqual(JSON.parse(renamed.text), {
        id: regular.tenantId,
        name: "RL renamed",
        rateLimit: { limit: 7, windowSeconds: 70 },
        retentionSeconds: null,
        strictEventTypes: false,
        status: "active",
        createdAt: (JSON.parse(renamed.text) as { createdAt: string }).createdAt
      })
      const missing = yield* Effect.promise(() =>
        callUrl(base, "/admin/tenants/ten_01JD0000000000000000000000", { method: "PATCH", json: { name: "x" } })
      )
      expectProblem(missing, 404)
      for (const rateLimit of [{ limit: 0, windowSeconds: 60 }, { limit: 5 }, { limit: 1.5, windowSeconds: 1 }, "x"]) {
        const bad = yield* Effect.promise(() =>
          callUrl(base, `/admin/tenants/${small.tenantId}`, { method: "PATCH", json: { rateLimit } })
        )
        expectProblem(bad, 400)
      }
    }).pipe(Effect.scoped)
  )

  it.effect("a tenant over its quota is refused on every spelling of the route, never falling back to the IP's", () =>
    Effect.gen(function* () {
      const server = yield* startTestServer({
        config: { rateLimit: rateLimit({ max: 1000, window: Duration.minutes(15) }) }
      })
      const base = server.baseUrl
      const tenant = yield* createTenantAt(base, "RL spellings", { rateLimit: { limit: 3, windowSeconds: 60 } })
      const counted = [
        yield* rawGet(base, "/v1/events", tenant.apiKey),
        yield* rawGet(base, "/V1/events", tenant.apiKey),
        yield* rawGet(base, "/%761/events", tenant.apiKey)
      ]
      // Each spelling was served as the route, and counted against the tenant.
      assert.deepStrictEqual(
        counted.map((r) => [r.status, r.headers.get("ratelimit-policy"), remainingOf(r)]),
        [
          [200, '"tenant";q=3;w=60', 2],
          [200, '"tenant";q=3;w=60', 1],
          [200, '"tenant";q=3;w=60', 0]
        ]
      )
      for (const path of ["/v1/events", ...eventsSpellings]) {
        const refused = yield* rawGet(base, path, tenant.apiKey)
        assert.strictEqual(refused.status, 429, `${path}: ${refused.text}`)
        assert.strictEqual(refused.headers.get("ratelimit-policy"), '"tenant";q=3;w=60', path)
        problemBody(refused, { type: quotaExceededType })
      }
      // Probes are exempt however they are spelled, and everything else still counts against the IP.
      const probe = yield* rawGet(base, "/LIVEZ")
      assert.strictEqual(probe.status, 200)
      assert.isNull(probe.headers.get("ratelimit-policy"))
      assert.strictEqual((yield* rawGet(base, "//ADMIN/tenants")).headers.get("ratelimit-policy"), '"ip";q=1000;w=900')
    }).pipe(Effect.scoped)
  )

  it.effect("an address over its quota costs no database lookup for made-up API keys; known keys still work", () =>
    Effect.gen(function* () {
      const requests: Array<OtlpRequest> = []
      const server = yield* startTestServer({
        tracing: inMemoryTracing(requests),
        config: { rateLimit: rateLimit({ max: 5, window: Duration.minutes(15) }) }
      })
      const base = server.baseUrl
      // One admin call (IP quota: 1 of 5), and the tenant's key seen valid once.
      const tenant = yield* createTenantAt(base, "RL known key", { rateLimit: { limit: 100, windowSeconds: 60 } })
      assert.strictEqual((yield* requestAt(base, "/v1/events", { bearer: tenant.apiKey })).status, 200)
      const madeUp = (i: number) => `ck_${String(i).padStart(43, "x")}`
      // Four made-up keys: looked up, unknown, 401 on the IP's quota (2..5 of 5).
      for (let i = 0; i < 4; i++) {
        const reply = yield* requestAt(base, "/v1/events", { bearer: madeUp(i) })
        assert.strictEqual(reply.status, 401, reply.text)
      }
      // The quota is used up: the next one is refused, once more after a lookup.
      assert.strictEqual((yield* requestAt(base, "/v1/events", { bearer: madeUp(4) })).status, 429)
      const lookups = () =>
        spansOf(requests).filter((span) => span.name === "ApiKeyAuth.lookup" && span.status.code !== 2).length
      const before = yield* poll("six key lookups", Effect.sync(lookups), (n) => n >= 6)
      assert.strictEqual(before, 6, "the tenant's key and five made-up ones")

      // From now on made-up keys are refused without asking the database.
      for (let i = 5; i < 55; i++) {
        const reply = yield* requestAt(base, "/v1/events", { bearer: madeUp(i) })
        assert.strictEqual(reply.status, 429)
        assert.strictEqual(reply.headers.get("ratelimit-policy"), '"ip";q=5;w=900')
      }
      // The tenant from the same address is not the address: its own quota, served.
      const served = yield* requestAt(base, "/v1/events", { bearer: tenant.apiKey })
      assert.strictEqual(served.status, 200)
      assert.strictEqual(served.headers.get("ratelimit-policy"), '"tenant";q=100;w=60')
      // Spans are exported every 20 ms; the shutdown flushes the rest.
      yield* server.shutdown
      assert.strictEqual(lookups(), 6, "no lookup for the 50 made-up keys refused on the address's quota")
    }).pipe(Effect.scoped)
  )

  it.effect("RATE_LIMIT_ENABLED=false: no headers, no limit", () =>
    Effect.gen(function* () {
      const server = yield* startTestServer({ config: { rateLimit: rateLimit({ enabled: false, max: 1 }) } })
      for (let i = 0; i < 3; i++) {
        const reply = yield* requestAt(server.baseUrl, "/nope")
        assert.strictEqual(reply.status, 404)
        assert.isNull(reply.headers.get("ratelimit-policy"))
        assert.isNull(reply.headers.get("ratelimit"))
      }
    }).pipe(Effect.scoped)
  )

  it.effect("without TRUST_PROXY, X-Forwarded-For is ignored: spoofed addresses share the socket's bucket", () =>
    Effect.gen(function* () {
      const server = yield* startTestServer({ config: { rateLimit: rateLimit({ max: 2 }) } })
      const base = server.baseUrl
      const replies = [
        yield* requestAt(base, "/nope", from("203.0.113.1")),
        yield* requestAt(base, "/nope", from("203.0.113.2")),
        yield* requestAt(base, "/nope", from("203.0.113.3, 198.51.100.9"))
      ]
      assert.deepStrictEqual(
        replies.map((r) => r.status),
        [404, 404, 429]
      )
      const clientIps = server.logs
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => l.path === "/nope")
        .map((l) => l.clientIp)
      assert.deepStrictEqual(clientIps, ["127.0.0.1", "127.0.0.1", "127.0.0.1"])
    }).pipe(Effect.scoped)
  )

  it.effect("TRUST_PROXY: the address the trusted proxy saw is the client, in the bucket and the access log", () =>
    Effect.gen(function* () {
      const server = yield* startTestServer({
        config: { rateLimit: rateLimit({ max: 2, trustProxy: { _tag: "Cidrs", cidrs: ["127.0.0.1/32"] } }) }
      })
      const base = server.baseUrl
      const statuses = (yield* Effect.forEach(
        [
          "203.0.113.1",
          // a client spoofing a leftmost entry: the proxy appended its real address
          "6.6.6.6, 203.0.113.1",
          "203.0.113.1",
          "203.0.113.2"
        ],
        (forwardedFor) => requestAt(base, "/nope", from(forwardedFor))
      )).map((r) => r.status)
      assert.deepStrictEqual(statuses, [404, 404, 429, 404])
      const clientIps = server.logs
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => l.path === "/nope")
        .map((l) => l.clientIp)
      assert.deepStrictEqual(clientIps, ["203.0.113.1", "203.0.113.1", "203.0.113.1", "203.0.113.2"])
    }).pipe(Effect.scoped)
  )

  it.effect("IPv6 rotation inside one /56 shares a bucket; IPv4-mapped IPv6 is the IPv4 client", () =>
    Effect.gen(function* () {
      const server = yield* startTestServer({
        config: { rateLimit: rateLimit({ max: 3, trustProxy: { _tag: "Hops", hops: 1 } }) }
      })
      const base = server.baseUrl
      const sameSlash56 = [
        "2001:db8:aa:bb00::1",
        "2001:db8:aa:bb17:1:2:3:4",
        "2001:db8:aa:bbff::ffff",
        "2001:db8:aa:bb42::9"
      ]
      const statuses = (yield* Effect.forEach(sameSlash56, (ip) => requestAt(base, "/nope", from(ip)))).map(
        (r) => r.status
      )
      assert.deepStrictEqual(statuses, [404, 404, 404, 429])
      // The neighbouring /56 is another subscriber.
      assert.strictEqual((yield* requestAt(base, "/nope", from("2001:db8:aa:bc00::1"))).status, 404)

      const mapped = (yield* Effect.forEach(
        ["198.51.100.7", "::ffff:198.51.100.7", "::ffff:c633:6407", "198.51.100.7"],
        (ip) => requestAt(base, "/nope", from(ip))
      )).map((r) => r.status)
      assert.deepStrictEqual(mapped, [404, 404, 404, 429])
    }).pipe(Effect.scoped)
  )

  it.effect(
    "Redis stopped mid-test: allow serves requests (no count), deny answers 503; logged once, counted",
    () =>
      Effect.gen(function* () {
        const port = yield* Effect.promise(freePort)
        const redis = yield* throwawayRedis(port)
        const redisUrl = Option.some(Redacted.make(redis.url))
        const allow = yield* startTestServer({
          config: { rateLimit: rateLimit({ max: 3, store: "redis", redisUrl, onStoreError: "allow" }) }
        })
        const deny = yield* startTestServer({
          config: { rateLimit: rateLimit({ max: 3, store: "redis", redisUrl, onStoreError: "deny" }) }
        })
        // Both servers count in the same Redis (both see this process as 127.0.0.1).
        assert.strictEqual(remainingOf(yield* requestAt(allow.baseUrl, "/nope")), 2)
        assert.strictEqual(remainingOf(yield* requestAt(deny.baseUrl, "/nope")), 1)

        yield* Effect.promise(redis.kill)

        for (let i = 0; i < 6; i++) {
          const reply = yield* requestAt(allow.baseUrl, "/nope")
          assert.strictEqual(reply.status, 404, reply.text)
          assert.strictEqual(reply.headers.get("ratelimit-policy"), '"ip";q=3;w=900')
          assert.isNull(reply.headers.get("ratelimit"), "no count to report")
        }
        for (let i = 0; i < 3; i++) {
          const reply = yield* requestAt(deny.baseUrl, "/nope")
          assert.strictEqual(reply.status, 503, reply.text)
          problemBody(reply, { type: reducedCapacityType })
          assert.strictEqual(reply.headers.get("retry-after"), "5")
        }
        // Probes never touch the store.
        assert.strictEqual((yield* requestAt(deny.baseUrl, "/livez")).status, 200)

        const allowMetrics = yield* scrapeUrl(`${allow.baseUrl}/metrics`)
        assert.strictEqual(decisions(allowMetrics, "ip", "store_error"), 6)
        const denyMetrics = yield* scrapeUrl(`${deny.baseUrl}/metrics`)
        assert.strictEqual(decisions(denyMetrics, "ip", "store_error"), 3)
        for (const server of [allow, deny]) {
          const incidents = server.logs.filter((l) => l.includes("rate-limit store unavailable"))
          assert.strictEqual(incidents.length, 1, incidents.join("\n"))
          assert.notInclude(server.logs.join("\n"), "NodeRedis")
        }

        // Redis back (empty: nothing was persisted): the client reconnects and counting resumes, logged once.
        yield* throwawayRedis(port)
        const counted = yield* Effect.promise(() =>
          pollPromise(
            "the store to answer again",
            () => callUrl(allow.baseUrl, "/nope"),
            (reply) => reply.headers.get("ratelimit") !== null,
            { timeoutMs: 20_000 }
          )
        )
        assert.strictEqual(counted.status, 404)
        assert.strictEqual(remainingOf(counted), 2)
        assert.strictEqual(allow.logs.filter((l) => l.includes("rate-limit store answers again")).length, 1)
      }).pipe(Effect.scoped),
    { tags: ["redis-server"] }
  )
})

// ---------------------------------------------------------------------------------------------------------------
// Two processes sharing Redis
// ---------------------------------------------------------------------------------------------------------------

const mode = inject("testDatabase")

layer(TestDatabaseLive)("the default quota of a server process, per APP_ENV", (it) => {
  /** A server process on this file's database (its own in-memory PGlite when no PostgreSQL server answers). */
  const startOn = (env: Record<string, string>) =>
    Effect.gen(function* () {
      const database = yield* TestDatabase
      return yield* appProcess(
        Option.getOrElse(database.url, () => ""),
        {
          PGLITE_DIR: "memory://",
          SHUTDOWN_DELAY: "0s",
          ...env
        }
      )
    })

  const quotaLine = (app: { readonly logs: () => ReadonlyArray<Record<string, unknown>> }) =>
    app.logs().find((entry) => typeof entry.message === "string" && entry.message.startsWith("rate limiting"))

  it.effect(
    "development: 10,000 requests per 15 minutes, said at startup",
    () =>
      Effect.gen(function* () {
        const app = yield* startOn({ APP_ENV: "development" })
        const reply = yield* requestAt(app.ready, "/docs")
        assert.strictEqual(reply.headers.get("ratelimit-policy"), '"ip";q=10000;w=900')
        assert.strictEqual(remainingOf(reply), 9999)
        const line = quotaLine(app)
        assert.strictEqual(
          line?.message,
          "rate limiting: 10000 requests per 15m per tenant or client IP (the development default; staging and production default to 100)"
        )
        assert.strictEqual(line?.level, "info")
      }).pipe(Effect.scoped),
    60_000
  )

  for (const appEnv of ["staging", "production"]) {
    it.effect(
      `${appEnv}: the product's quota, 100 requests per 15 minutes`,
      () =>
        Effect.gen(function* () {
          const app = yield* startOn({ APP_ENV: appEnv })
          const reply = yield* requestAt(app.ready, "/docs")
          assert.strictEqual(reply.headers.get("ratelimit-policy"), '"ip";q=100;w=900')
          assert.strictEqual(remainingOf(reply), 99)
          assert.strictEqual(quotaLine(app)?.message, "rate limiting: 100 requests per 15m per tenant or client IP")
        }).pipe(Effect.scoped),
      60_000
    )
  }

  it.effect(
    "RATE_LIMIT_MAX set in development wins over the development default",
    () =>
      Effect.gen(function* () {
        const app = yield* startOn({ APP_ENV: "development", RATE_LIMIT_MAX: "100" })
        const reply = yield* requestAt(app.ready, "/docs")
        assert.strictEqual(reply.headers.get("ratelimit-policy"), '"ip";q=100;w=900')
        assert.strictEqual(quotaLine(app)?.message, "rate limiting: 100 requests per 15m per tenant or client IP")
      }).pipe(Effect.scoped),
    60_000
  )
})

describe.skipIf(mode.kind === "pglite")("across processes (needs a PostgreSQL server)", { tags: ["redis"] }, () => {
  layer(testServerWithSql(), { excludeTestServices: true })("two server processes sharing Redis", (it) => {
    it.effect(
      "120 concurrent requests of one tenant spread over two processes → exactly its quota of 30 accepted",
      () =>
        Effect.gen(function* () {
          const shared = yield* SharedDatabase
          const server = yield* TestServer
          // The machine's Redis: tenant ids are unique, so these counters cannot collide with anything else.
          const env = { RATE_LIMIT_STORE: "redis", REDIS_URL: "redis://127.0.0.1:6379", RATE_LIMIT_MAX: "1000" }
          const apps = yield* Effect.all([appProcess(shared.url, env), appProcess(shared.url, env)], {
            concurrency: 2
          })
          const tenant = yield* createTenantAt(server.baseUrl, "RL two processes", {
            rateLimit: { limit: 30, windowSeconds: 600 }
          })
          const replies = yield* Effect.promise(() =>
            Promise.all(
              Array.from({ length: 120 }, (_, i) =>
                callUrl(apps[i % 2]?.ready ?? "", "/v1/endpoints", { bearer: tenant.apiKey })
              )
            )
          )
          const accepted = replies.filter((r) => r.status === 200)
          const refused = replies.filter((r) => r.status === 429)
          assert.strictEqual(accepted.length, 30, JSON.stringify(replies.map((r) => r.status)))
          assert.strictEqual(refused.length, 90)
          // One shared count: every remaining value from 29 down to 0 was handed out exactly once.
          assert.deepStrictEqual(
            accepted.map(remainingOf).sort((a, b) => a - b),
            Array.from({ length: 30 }, (_, i) => i)
          )
          for (const reply of replies) {
            assert.strictEqual(reply.headers.get("ratelimit-policy"), '"tenant";q=30;w=600')
          }
        }).pipe(Effect.scoped),
      90_000
    )
  })
})
