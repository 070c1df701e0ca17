import { assert, layer } from "@effect/vitest"
import { Deferred, Duration, Effect } from "effect"
import { SqlClient } from "effect/sql"
import { Webhook } from "standardwebhooks"
import { inject } from "vitest"
import { packageVersion } from "../src/domain/PackageInfo.ts"
import { delayBound } from "../src/domain/RetryPolicy.ts"
import { type Api, deliveryOf, fastWorker, publish, settled, tenantWithEndpoint } from "./support/deliveryApi.ts"
import { isDefined, poll } from "./support/poll.ts"
import { answer, headerOf, makeReceiver, verifyHeaders } from "./support/receiver.ts"
import { testServerWithSql } from "./support/sharedDatabase.ts"
import { TestServer } from "./support/testServer.ts"
import { slack } from "./support/timing.ts"

/**
 * The delivery engine end to end: the real server with its worker, real receivers (node:http on 127.0.0.1), the real
 * database. Backoff is shortened through the configuration (base 50 ms); the timeout is 500 ms.
 */

const delivery = fastWorker({ timeout: Duration.millis(500), backoffMax: Duration.seconds(5) })

/** The retry policy the worker runs with (5 attempts, 50 ms base, 5 s cap), for the backoff bounds. */
const policy = { maxAttempts: delivery.maxAttempts, base: delivery.backoffBase, max: delivery.backoffMax }

/**
 * Rows are read through the API (`GET /v1/events/{id}/deliveries`, `GET /v1/deliveries/{id}`), not with SQL: on the
 * embedded database a second connection may not query while the worker does.
 */
const attemptsOf = (api: Api, deliveryId: string) =>
  api.deliveries.get({ params: { id: deliveryId } }).pipe(
    Effect.map(({ attempts }) =>
      attempts.map((a) => ({
        attempt: a.attempt,
        outcome: a.outcome,
        status_code: a.statusCode,
        error: a.error,
        response_excerpt: a.responseExcerpt,
        duration_ms: a.durationMs,
        started_ms: Date.parse(a.startedAt)
      }))
    ),
    Effect.orDie
  )

// Port 1, where nobody listens, is outside the default WEBHOOK_ALLOWED_PORTS: allowed here for the refused-connection case.
const workerConfig = { delivery, webhookAllowedPorts: [{ from: 1, to: 65535 }] }

layer(testServerWithSql({ config: workerConfig }), { excludeTestServices: true })("the delivery worker", (it) => {
  it.effect(
    "tracing off: the publisher's traceparent reaches every attempt unchanged; a malformed one is dropped",
    () =>
      Effect.gen(function* () {
        const { baseUrl } = yield* TestServer
        const receiver = yield* makeReceiver((index, _, res) => answer(res, index === 0 ? 500 : 204))
        const { api, apiKey } = yield* tenantWithEndpoint(receiver.url)
        const publishWith = (traceparent: string) =>
          Effect.promise(async () => {
            const response = await fetch(`${baseUrl}/v1/events`, {
              method: "POST",
              headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json", traceparent },
              body: JSON.stringify({ type: "order.created", data: { n: 1 } })
            })
            return (await response.json()) as { readonly event: { readonly id: string } }
          })
        const incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        const traced = yield* publishWith(incoming)
        // Two attempts (500, then 204): both carry the caller's traceparent as it was sent, and nothing else of ours.
        yield* settled(api, traced.event.id)
        assert.deepStrictEqual(
          receiver.requests.map((r) => r.headers.traceparent),
          [incoming, incoming]
        )
        assert.isUndefined(receiver.requests[1]?.headers.b3)
        // Upper-case hex is not W3C: dropped, not repaired.
        const malformed = yield* publishWith("00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01")
        yield* settled(api, malformed.event.id)
        assert.strictEqual(receiver.requests.length, 3)
        assert.isUndefined(receiver.requests[2]?.headers.traceparent)
      })
  )

  it.effect(
    "signed per Standard Webhooks: verified by the official library, also with both secrets during rotation",
    () =>
      Effect.gen(function* () {
        const receiver = yield* makeReceiver((_, __, res) => answer(res, 204))
        const { api, endpointId, secret } = yield* tenantWithEndpoint(receiver.url)

        const first = yield* publish(api, "order.created", { orderId: "o_1", note: "é✓" })
        const row = yield* settled(api, first.event.id)
        assert.strictEqual(row.status, "succeeded")
        assert.strictEqual(row.attemptCount, 1)
        assert.strictEqual(receiver.requests.length, 1)
        const [request] = receiver.requests
        if (request === undefined) return assert.fail("no request")
        const payload = new Webhook(secret).verify(request.body, verifyHeaders(request))
        assert.deepStrictEqual(payload, {
          type: "order.created",
          timestamp: first.event.occurredAt,
          data: { orderId: "o_1", note: "é✓" }
        })
        assert.strictEqual(headerOf(request, "webhook-id"), first.event.id)
        assert.strictEqual(headerOf(request, "content-type"), "application/json")
        assert.strictEqual(headerOf(request, "user-agent"), `codex-api/${packageVersion}`)
        // The typed client sent its own traceparent with the publish: passed on (tracing is off here).
        assert.match(headerOf(request, "traceparent"), /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/)
        const attempts = yield* attemptsOf(api, row.id)
        assert.deepStrictEqual(
          attempts.map((a) => [a.attempt, a.outcome, a.status_code]),
          [[1, "succeeded", 204]]
        )

        // Rotation: the old secret keeps signing for the overlap, so receivers holding either one verify.
        const rotated = yield* api.endpoints.rotateSecret({ params: { id: endpointId } }).pipe(Effect.orDie)
        assert.strictEqual(rotated.previousSecret, secret)
        const second = yield* publish(api)
        assert.strictEqual((yield* settled(api, second.event.id)).status, "succeeded")
        const [, during] = receiver.requests
        if (during === undefined) return assert.fail("no second request")
        assert.strictEqual(headerOf(during, "webhook-signature").split(" ").length, 2)
        new Webhook(rotated.secret).verify(during.body, verifyHeaders(during))
        new Webhook(secret).verify(during.body, verifyHeaders(during))
        assert.throws(() => new Webhook(rotated.secret).verify(`${during.body} `, verifyHeaders(during)))
      })
  )

  it.effect("flaky receiver (3 × 500, then 200): delivered on attempt 4, delays within the backoff bounds", () =>
    Effect.gen(function* () {
      const receiver = yield* makeReceiver((i, _, res) => (i < 3 ? answer(res, 500, {}, "boom") : answer(res, 200)))
      const { api } = yield* tenantWithEndpoint(receiver.url)
      const published = yield* publish(api)
      const row = yield* settled(api, published.event.id)
      assert.strictEqual(row.status, "succeeded")
      assert.strictEqual(row.attemptCount, 4)
      assert.strictEqual(receiver.requests.length, 4)
      assert.strictEqual(new Set(receiver.requests.map((r) => headerOf(r, "webhook-id"))).size, 1, "same webhook-id")
      const attempts = yield* attemptsOf(api, row.id)
      assert.deepStrictEqual(
        attempts.map((a) => [a.attempt, a.outcome, a.status_code, a.response_excerpt]),
        [
          [1, "failed", 500, "boom"],
          [2, "failed", 500, "boom"],
          [3, "failed", 500, "boom"],
          [4, "succeeded", 200, ""]
        ]
      )
      // Gap between the end of attempt n and the start of n+1: at most the bound plus one poll interval, with slack for
      // the load (test/support/timing.ts).
      for (let n = 1; n < attempts.length; n++) {
        const previous = attempts[n - 1]
        const current = attempts[n]
        if (previous === undefined || current === undefined) continue
        const gap = current.started_ms - (previous.started_ms + previous.duration_ms)
        assert.isAtLeast(gap, -5)
        assert.isAtMost(
          gap,
          Duration.toMillis(delayBound(policy, n + 1)) + 100 + slack(400),
          `gap before attempt ${n + 1}`
        )
      }
    })
  )

  it.effect("a lease lost during the send: the attempt is recorded, the delivery is left to the lease's holder", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const release = yield* Deferred.make<void>()
      const receiver = yield* makeReceiver(async (i, _, res) => {
        if (i === 0) await Effect.runPromise(Deferred.await(release))
        answer(res, 204)
      })
      const { api } = yield* tenantWithEndpoint(receiver.url)
      const published = yield* publish(api)
      yield* poll(
        "the first request to arrive",
        Effect.sync(() => receiver.requests[0]),
        isDefined
      )
      const row = yield* deliveryOf(api, published.event.id)
      if (row === undefined) return assert.fail("no delivery")
      // Another worker took the delivery over while this one was sending (its lease ran out, say).
      yield* sql`UPDATE deliveries SET locked_by = 'another-worker' WHERE id = ${row.id}`
      yield* Deferred.succeed(release, undefined)
      const [attempt] = yield* poll(
        "the attempt to be recorded",
        attemptsOf(api, row.id),
        (attempts) => attempts.length > 0
      )
      assert.strictEqual(attempt?.attempt, 1)
      const [after] = yield* sql<{ status: string; locked_by: string | null; attempt_count: number }>`
        SELECT status, locked_by, attempt_count FROM deliveries WHERE id = ${row.id}`
      assert.deepStrictEqual(after, { status: "pending", locked_by: "another-worker", attempt_count: 0 })
      // Its holder gone too, the delivery is claimed again and delivered.
      yield* sql`UPDATE deliveries SET locked_by = NULL, locked_until = NULL WHERE id = ${row.id}`
      assert.strictEqual((yield* settled(api, published.event.id)).status, "succeeded")
    })
  )

  it.effect("always 500: failed after exactly 5 attempts", () =>
    Effect.gen(function* () {
      const receiver = yield* makeReceiver((_, __, res) => answer(res, 500))
      const { api } = yield* tenantWithEndpoint(receiver.url)
      const published = yield* publish(api)
      const row = yield* settled(api, published.event.id)
      assert.strictEqual(row.status, "failed")
      assert.strictEqual(row.attemptCount, 5)
      assert.strictEqual(row.lastStatus, 500)
      assert.strictEqual(receiver.requests.length, 5)
      assert.deepStrictEqual(
        (yield* attemptsOf(api, row.id)).map((a) => a.attempt),
        [1, 2, 3, 4, 5]
      )
    })
  )

  it.effect("410 Gone: the endpoint is disabled, its pending deliveries cancelled, no more are queued", () =>
    Effect.gen(function* () {
      const receiver = yield* makeReceiver((_, __, res) => answer(res, 410))
      const { api, endpointId } = yield* tenantWithEndpoint(receiver.url)
      const published = yield* publish(api)
      const row = yield* settled(api, published.event.id)
      assert.strictEqual(row.status, "failed")
      assert.strictEqual(row.lastStatus, 410)
      assert.strictEqual(receiver.requests.length, 1)
      const endpoint = yield* api.endpoints.get({ params: { id: endpointId } }).pipe(Effect.orDie)
      assert.isFalse(endpoint.enabled)
      assert.strictEqual((yield* publish(api)).deliveriesQueued, 0)
    })
  )

  it.effect("Retry-After: 2 is honoured (429 → next attempt ≥ 2 s later)", () =>
    Effect.gen(function* () {
      const receiver = yield* makeReceiver((i, _, res) =>
        i === 0 ? answer(res, 429, { "retry-after": "2" }) : answer(res, 200)
      )
      const { api } = yield* tenantWithEndpoint(receiver.url)
      const published = yield* publish(api)
      const row = yield* settled(api, published.event.id, 15_000)
      assert.strictEqual(row.status, "succeeded")
      assert.strictEqual(row.attemptCount, 2)
      const [first, second] = receiver.requests
      if (first === undefined || second === undefined) return assert.fail("two requests expected")
      const gap = second.at - first.at
      assert.isAtLeast(gap, 1_950, "waited for Retry-After")
      assert.isAtMost(gap, 2_000 + slack(1_000), "not much longer than asked")
      assert.deepStrictEqual(
        (yield* attemptsOf(api, row.id)).map((a) => [a.outcome, a.status_code]),
        [
          ["failed", 429],
          ["succeeded", 200]
        ]
      )
    })
  )

  it.effect("slow receiver: the attempt times out (recorded as timeout), the retry is delivered", () =>
    Effect.gen(function* () {
      const receiver = yield* makeReceiver(async (i, _, res) => {
        if (i === 0) await new Promise((resolve) => setTimeout(resolve, 2_000))
        answer(res, 200)
      })
      const { api } = yield* tenantWithEndpoint(receiver.url)
      const published = yield* publish(api)
      const row = yield* settled(api, published.event.id)
      assert.strictEqual(row.status, "succeeded")
      const attempts = yield* attemptsOf(api, row.id)
      assert.deepStrictEqual(
        attempts.map((a) => [a.outcome, a.status_code]),
        [
          ["timeout", null],
          ["succeeded", 200]
        ]
      )
      // "timeout" above says the 500 ms timeout cut it, not the receiver's answer 2 s in; this bounds how soon.
      const [timedOut] = attempts
      assert.isAtLeast(timedOut?.duration_ms ?? 0, 450)
      assert.isBelow(timedOut?.duration_ms ?? Number.POSITIVE_INFINITY, 500 + slack(500))
    })
  )

  it.effect("redirects are not followed (302 = failure), refused connections are network errors; both retried", () =>
    Effect.gen(function* () {
      const target = yield* makeReceiver((_, __, res) => answer(res, 200))
      const receiver = yield* makeReceiver((i, _, res) =>
        i === 0 ? answer(res, 302, { location: target.url }) : answer(res, 200, {}, "x".repeat(10_000))
      )
      const { api } = yield* tenantWithEndpoint(receiver.url)
      const published = yield* publish(api)
      const row = yield* settled(api, published.event.id)
      assert.strictEqual(row.status, "succeeded")
      assert.strictEqual(target.requests.length, 0, "the redirect target is never called")
      const attempts = yield* attemptsOf(api, row.id)
      assert.deepStrictEqual(
        attempts.map((a) => [a.outcome, a.status_code]),
        [
          ["failed", 302],
          ["succeeded", 200]
        ]
      )
      assert.strictEqual(attempts[1]?.response_excerpt?.length, 4096, "the body is read up to 4 KiB")

      // Nobody listens on port 1.
      const dead = yield* tenantWithEndpoint("http://127.0.0.1:1/hook")
      const lost = yield* publish(dead.api)
      const failed = yield* settled(dead.api, lost.event.id)
      assert.strictEqual(failed.status, "failed")
      const errors = yield* attemptsOf(dead.api, failed.id)
      assert.strictEqual(errors.length, 5)
      for (const attempt of errors) {
        assert.strictEqual(attempt.outcome, "network_error")
        assert.match(attempt.error ?? "", /ECONNREFUSED/)
      }
    })
  )
})

// On PostgreSQL the worker LISTENs, and polling is set to an hour: after its first look at startup, only NOTIFY or the
// API's in-process wake-up (both fire in one process) can explain a delivery, however slow the machine. Each is proved
// alone elsewhere: NOTIFY across processes in delivery-processes.test.ts, the in-process wake-up on the embedded
// database in delivery-wakeup.test.ts. The embedded database (a pool of one) cannot LISTEN: there the worker also
// polls every 200 ms, and only delivery itself is checked.
const pollInterval = inject("testDatabase").kind === "pglite" ? Duration.millis(200) : Duration.hours(1)

layer(testServerWithSql({ config: { delivery: { ...delivery, pollInterval } } }), { excludeTestServices: true })(
  "the delivery worker, woken by NOTIFY",
  (it) => {
    it.effect(
      "a new event reaches a healthy receiver when published (NOTIFY), not at the next poll",
      () =>
        Effect.gen(function* () {
          const { logs } = yield* TestServer
          // The worker logs whether it listens (it does not on a pool of one, i.e. the embedded database).
          const startLine = logs.find((line) => line.includes('"delivery worker started"')) ?? "{}"
          const parsed = JSON.parse(startLine) as { listening?: unknown; annotations?: { listening?: unknown } }
          const listening = parsed.listening ?? parsed.annotations?.listening
          assert.strictEqual(listening, inject("testDatabase").kind === "postgres", startLine)
          const receiver = yield* makeReceiver((_, __, res) => answer(res, 200))
          const { api } = yield* tenantWithEndpoint(receiver.url)
          const latencies: Array<number> = []
          for (let i = 0; i < 20; i++) {
            const before = performance.now()
            yield* publish(api, "order.created", { i })
            // Arriving at all is the proof: the next poll is an hour away (on PostgreSQL).
            yield* poll(
              `event ${i} to be delivered`,
              Effect.sync(() => receiver.requests.length > i),
              (delivered) => delivered,
              // On PostgreSQL the next poll is an hour away: a wake-up (NOTIFY or in process) delivers it.
              { timeoutMs: slack(2_000) }
            )
            latencies.push((receiver.requests[i]?.at ?? Number.POSITIVE_INFINITY) - before)
          }
          latencies.sort((a, b) => a - b)
          const p50 = latencies[Math.floor(latencies.length / 2)] ?? Number.POSITIVE_INFINITY
          if (listening === true) {
            // Reported, not asserted: a latency bound measures the machine's load as much as the code.
            console.log(
              `publish → receiver latency over ${latencies.length} events: p50 ${p50.toFixed(1)} ms, max ${latencies.at(-1)?.toFixed(1)} ms`
            )
          }
        }),
      { timeout: 120_000 }
    )
  }
)
