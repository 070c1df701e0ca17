import type { ServerResponse } from "node:http"
import { assert, describe, it, layer } from "@effect/vitest"
import { Duration, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { DeliveryWakeupsLive } from "../layers/DeliveryWakeupsLive.ts"
import { DeliveryWorkerLive } from "../layers/DeliveryWorkerLive.ts"
import { EndpointsLive } from "../layers/EndpointsLive.ts"
import { EventsLive } from "../layers/EventsLive.ts"
import { SecretBoxLive } from "../layers/SecretBoxLive.ts"
import { TenantsLive } from "../layers/TenantsLive.ts"
import { urlPolicyWith } from "../layers/UrlPolicyLive.ts"
import { WebhookSenderLive } from "../layers/WebhookSenderLive.ts"
import { EndpointCircuits } from "../services/EndpointCircuits.ts"
import { Endpoints } from "../services/Endpoints.ts"
import { Events } from "../services/Events.ts"
import { Tenants } from "../services/Tenants.ts"
import { JsonText } from "../src/domain/JsonText.ts"
import { appConfigTest } from "./support/appConfig.ts"
import { endpointCircuitsTest } from "./support/circuits.ts"
import { type Api, deliveryOf, fastWorker, publish, succeeded, tenantWithEndpoint } from "./support/deliveryApi.ts"
import { type Exposition, gaugeOf, scrape, seriesValue } from "./support/metrics.ts"
import { makeMetricsTest } from "./support/metricsRegistry.ts"
import { outboundPost } from "./support/outbound.ts"
import { poll } from "./support/poll.ts"
import { answer, makeReceiver } from "./support/receiver.ts"
import { testServerWithSql } from "./support/sharedDatabase.ts"
import { TestSqlLive } from "./support/testDatabase.ts"
import { TestServer } from "./support/testServer.ts"
import { slack } from "./support/timing.ts"

/**
 * The send path's resilience end to end, against real receivers on 127.0.0.1 and the real database: the per-endpoint
 * circuit breaker, the per-endpoint bulkhead, and the SSRF guard at connect time.
 */

const delivery = fastWorker({ timeout: Duration.seconds(10) })

/** One event numbered `n` for the tenant of `api`. */
const publishNumbered = (api: Api, n: number) => publish(api, "order.created", { n })

const endpointOf = (api: Api, id: string) => api.endpoints.get({ params: { id } }).pipe(Effect.orDie)

/** Breaker transitions `from` → `to` in a scrape. */
const transitions = (exposition: Exposition, from: string, to: string) =>
  seriesValue(exposition, "circuit_breaker_transitions_total", { from, to })

// The open period must outlast the checks made while the circuit is open (past it the worker sends a probe, which
// they would count): about 2 s of work on an idle machine, more under load. The test asserts it did.
const openBaseMs = slack(2_000)
const breaker = {
  failureThreshold: 3,
  openBase: Duration.millis(openBaseMs),
  openMax: Duration.millis(2 * openBaseMs),
  redisPrefix: "codex:test:unused:"
}

layer(testServerWithSql({ config: { delivery, breaker } }), { excludeTestServices: true })(
  "the circuit breaker in the worker",
  (it) => {
    it.effect(
      "a dead endpoint trips its circuit, its deliveries wait without using attempts, a healthy endpoint is unaffected",
      () =>
        Effect.gen(function* () {
          let healed = false
          const dead = yield* makeReceiver((_, __, res) => (healed ? answer(res, 200) : answer(res, 500)))
          const good = yield* makeReceiver((_, __, res) => answer(res, 200))
          const d = yield* tenantWithEndpoint(dead.url)
          const g = yield* tenantWithEndpoint(good.url)

          // Three failed attempts in a row (500) open the dead endpoint's circuit.
          const beforeFirst = Date.now()
          const first = yield* publishNumbered(d.api, 0)
          const opened = yield* poll(
            "the dead endpoint's circuit opened",
            endpointOf(d.api, d.endpointId),
            (e) => e.health.circuit === "open"
          )
          const afterRead = Date.now()
          const openUntil = Date.parse(opened.health.openUntil ?? "")
          // BREAKER_OPEN_BASE with x0.8..1.2 jitter, from the trip: between the publish and this read, whatever the
          // machine's speed (1 ms of rounding each way).
          assert.isAtLeast(openUntil, beforeFirst + 0.8 * openBaseMs - 1)
          assert.isAtMost(openUntil, afterRead + 1.2 * openBaseMs + 1)
          assert.strictEqual(dead.requests.length, 3)
          assert.deepStrictEqual((yield* endpointOf(g.api, g.endpointId)).health, {
            circuit: "closed",
            openUntil: null
          })

          // While it is open: new events for it wait, and the healthy endpoint keeps receiving promptly.
          const waiting = yield* Effect.forEach([1, 2, 3, 4, 5], (n) => publishNumbered(d.api, n))
          for (let i = 0; i < 10; i++) {
            yield* publishNumbered(g.api, i)
            yield* poll(
              "delivered to the healthy endpoint",
              Effect.sync(() => good.requests.length),
              (n) => n > i,
              { timeoutMs: slack(1_000) }
            )
          }
          assert.strictEqual(dead.requests.length, 3, "nothing is sent to an open circuit")
          const stuck = yield* deliveryOf(d.api, first.event.id)
          assert.strictEqual(stuck?.status, "pending")
          assert.strictEqual(stuck?.attemptCount, 3, "the deferral used no attempt")
          for (const published of waiting) {
            const row = yield* deliveryOf(d.api, published.event.id)
            assert.strictEqual(row?.status, "pending")
            assert.strictEqual(row?.attemptCount, 0)
            // The pause is the endpoint's (one row): its deliveries keep their places, none is rewritten.
            assert.strictEqual(row?.nextAttemptAt, row?.createdAt)
          }
          const metrics = yield* scrape
          assert.strictEqual(transitions(metrics, "closed", "open"), 1)
          assert.strictEqual(gaugeOf(metrics, "circuit_breakers_open"), 1)
          // What makes the checks above mean something: they all ran while the circuit was open (a probe may follow
          // it), so the healthy endpoint was served without waiting for the dead one's circuit to close.
          assert.isBelow(Date.now(), openUntil, "the open period outlasted the checks: raise openBaseMs")
          // And a log line per transition: a warning naming the endpoint and when the circuit reopens (README).
          const { logs } = yield* TestServer
          const circuitLines = () =>
            logs
              .map((line) => JSON.parse(line) as Record<string, unknown>)
              .filter((e) => String(e.message).startsWith("circuit breaker:") && e.endpointId === d.endpointId)
          const [openedLine, ...afterOpening] = circuitLines()
          assert.deepInclude(openedLine, {
            level: "warn",
            message: "circuit breaker: endpoint circuit opened; its deliveries wait",
            from: "closed",
            to: "open"
          })
          // The same instant as the endpoint's health (computed separately: a millisecond apart at most).
          assert.approximately(Date.parse(String(openedLine?.openUntil)), Date.parse(opened.health.openUntil ?? ""), 50)
          assert.deepStrictEqual(afterOpening, [])

          // The receiver recovers: after the open period one probe closes the circuit and everything arrives, the
          // first delivery on its 4th attempt, the deferred ones on their 1st.
          healed = true
          for (const published of [first, ...waiting]) {
            yield* succeeded(d.api, published.event.id, Math.max(0, openUntil - Date.now()) + slack(5_000))
          }
          assert.strictEqual((yield* deliveryOf(d.api, first.event.id))?.attemptCount, 4)
          for (const published of waiting) {
            assert.strictEqual((yield* deliveryOf(d.api, published.event.id))?.attemptCount, 1)
          }
          assert.strictEqual(dead.requests.length, 3 + 6)
          assert.deepStrictEqual((yield* endpointOf(d.api, d.endpointId)).health, {
            circuit: "closed",
            openUntil: null
          })
          const after = yield* scrape
          assert.strictEqual(transitions(after, "open", "half_open"), 1)
          assert.strictEqual(transitions(after, "half_open", "closed"), 1)
          assert.strictEqual(gaugeOf(after, "circuit_breakers_open"), 0)
          assert.deepStrictEqual(
            circuitLines().map((e) => [e.level, e.from, e.to]),
            [
              ["warn", "closed", "open"],
              ["info", "open", "half_open"],
              ["info", "half_open", "closed"]
            ]
          )
        }),
      { timeout: 60_000 }
    )
  }
)

layer(testServerWithSql({ config: { delivery: { ...delivery, concurrency: 6, endpointConcurrency: 2 } } }), {
  excludeTestServices: true
})("bulkheads in the worker", (it) => {
  it.effect(
    "a slow receiver holds at most its per-endpoint share of the slots; another endpoint is delivered meanwhile",
    () =>
      Effect.gen(function* () {
        // The slow receiver holds every request until the test lets go (no timing involved).
        let inFlight = 0
        let most = 0
        let release: () => void = () => undefined
        const gate = new Promise<void>((resolve) => {
          release = resolve
        })
        const slow = yield* makeReceiver(async (_, __, res: ServerResponse) => {
          inFlight++
          most = Math.max(most, inFlight)
          await gate
          inFlight--
          answer(res, 200)
        })
        const fast = yield* makeReceiver((_, __, res) => answer(res, 200))
        const s = yield* tenantWithEndpoint(slow.url)
        const f = yield* tenantWithEndpoint(fast.url)

        yield* Effect.forEach(
          Array.from({ length: 12 }, (_, n) => n),
          (n) => publishNumbered(s.api, n)
        )
        yield* poll(
          "the slow receiver holds its share",
          Effect.sync(() => inFlight),
          (n) => n === 2
        )
        // Without the per-endpoint limit the slow receiver would hold all 6 slots, and these would wait for it: until
        // release() below, i.e. forever, so arriving at all is the proof (no latency bound needed).
        for (let i = 0; i < 5; i++) {
          yield* publishNumbered(f.api, i)
          yield* poll(
            "delivered to the other endpoint while the slow one holds its requests",
            Effect.sync(() => fast.requests.length),
            (n) => n > i,
            { timeoutMs: slack(1_000) }
          )
        }
        assert.strictEqual(slow.requests.length, 2, "only 2 of the slow endpoint's deliveries were sent")
        assert.strictEqual(most, 2)

        release()
        yield* poll(
          "every slow delivery arrives",
          Effect.sync(() => slow.requests.length),
          (n) => n === 12,
          { timeoutMs: 15_000 }
        )
        assert.strictEqual(most, 2, "never more than 2 in flight to one endpoint")
      }),
    { timeout: 60_000 }
  )
})

/**
 * A worker with the production SSRF policy (private networks refused; http still allowed, as in development, so the
 * receivers on 127.0.0.1 need no TLS), whose URL policy is told by a scripted resolver that every host is public:
 * what an attacker gets from DNS rebinding, a public answer at check time and a private one when connecting.
 */
const scriptedPublicDns = urlPolicyWith(() => Effect.succeed(["93.184.216.34"]))

const guardedWorker = () => {
  const { layer: metrics } = makeMetricsTest()
  const config = appConfigTest({
    webhookAllowPrivateNetworks: false,
    delivery: { ...delivery, maxAttempts: 1, timeout: Duration.seconds(5) }
  })
  // A circuit that would open on one failure: the refused attempts must not count against the receiver.
  const circuits = endpointCircuitsTest({ failureThreshold: 1 })
  const services = Layer.mergeAll(TenantsLive, EndpointsLive, EventsLive)
  const worker = DeliveryWorkerLive.pipe(Layer.provide([WebhookSenderLive, scriptedPublicDns]))
  return Layer.merge(services, worker).pipe(
    Layer.provide(DeliveryWakeupsLive),
    Layer.provideMerge(circuits),
    Layer.provide(metrics),
    Layer.provide(SecretBoxLive),
    Layer.provide(config),
    Layer.provideMerge(TestSqlLive)
  )
}

layer(guardedWorker(), { excludeTestServices: true })("the SSRF guard at connect time", (it) => {
  it.effect(
    "a name resolving to loopback and a loopback literal are refused when connecting: blocked, nothing sent",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const receiver = yield* makeReceiver((_, __, res) => answer(res, 200))
        const port = new URL(receiver.url).port
        const { tenant } = yield* (yield* Tenants).create({ name: "SSRF" })
        const endpoints = yield* Endpoints
        const events = yield* Events
        const circuits = yield* EndpointCircuits
        const targets = [`http://localhost:${port}/hook`, `http://127.0.0.1:${port}/hook`]
        const endpointIds: Array<string> = []
        for (const url of targets) endpointIds.push((yield* endpoints.create(tenant.id, { url })).id)
        const published = yield* events.publish(tenant.id, { type: "order.created", data: JsonText('{"n":1}') })
        assert.strictEqual(published.deliveriesQueued, 2)

        const attempts = yield* poll(
          "both deliveries attempted",
          sql<{ url: string; status: string; outcome: string; status_code: number | null; error: string | null }>`
            SELECT ep.url, d.status, a.outcome, a.status_code, a.error
            FROM deliveries d
            JOIN endpoints ep ON ep.id = d.endpoint_id
            JOIN delivery_attempts a ON a.delivery_id = d.id
            WHERE d.event_id = ${published.event.id} AND d.status <> 'pending'
            ORDER BY ep.url`,
          (rows) => rows.length === 2
        )
        for (const attempt of attempts) {
          assert.strictEqual(attempt.status, "failed", attempt.url)
          assert.strictEqual(attempt.outcome, "blocked", attempt.url)
          assert.isNull(attempt.status_code)
        }
        const [byLiteral, byName] = attempts // ordered by URL: 127.0.0.1 sorts before localhost
        // The name passed the check before sending (scripted DNS) and was refused on the address it connected to.
        assert.match(byName?.error ?? "", /^address not allowed at connect time: localhost is (127\.0\.0\.1|::1),/)
        // An IP literal needs no DNS: the check before sending already refuses it.
        assert.strictEqual(byLiteral?.error, "URL not allowed: the address is in a private or reserved network")
        assert.strictEqual(receiver.requests.length, 0, "no request reached the receiver")
        // Nothing was sent, so nothing was learnt about the receiver: its circuits stay closed.
        for (const id of endpointIds) assert.strictEqual((yield* circuits.health(id)).circuit, "closed")
      }),
    { timeout: 30_000 }
  )
})

describe("the outbound client's connect-time guard", () => {
  const get = outboundPost

  it.live("refuses loopback names and literals in every spelling before connecting; allows them when configured", () =>
    Effect.gen(function* () {
      const receiver = yield* makeReceiver((_, __, res) => answer(res, 204))
      const port = new URL(receiver.url).port
      const urls = [
        `http://127.0.0.1:${port}/hook`,
        `http://127.1:${port}/hook`,
        `http://[::ffff:127.0.0.1]:${port}/hook`,
        `http://localhost:${port}/hook`
      ]
      const guarded = yield* Effect.forEach(urls, get).pipe(
        Effect.provide(WebhookSenderLive.pipe(Layer.provide(appConfigTest({ webhookAllowPrivateNetworks: false }))))
      )
      for (const [i, outcome] of guarded.entries()) {
        assert.match(
          String(outcome),
          /^(127\.0\.0\.1|127\.1|::ffff:7f00:1|localhost is (127\.0\.0\.1|::1),) (is )?a private or reserved address$/,
          urls[i]
        )
      }
      assert.strictEqual(receiver.requests.length, 0, "nothing reached the receiver")

      const open = yield* Effect.forEach(urls, get).pipe(
        Effect.provide(WebhookSenderLive.pipe(Layer.provide(appConfigTest({ webhookAllowPrivateNetworks: true }))))
      )
      assert.deepStrictEqual(open, [204, 204, 204, 204])
    })
  )
})
