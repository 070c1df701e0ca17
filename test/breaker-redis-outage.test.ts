// @module-tag redis-server
import { randomBytes } from "node:crypto"
import type { ServerResponse } from "node:http"
import { assert, layer } from "@effect/vitest"
import { Duration, Effect, Option, Redacted } from "effect"
import { createClient } from "redis"
import { type Api, deliveryOf, fastWorker, publish, succeeded, tenantWithEndpoint } from "./support/deliveryApi.ts"
import { poll } from "./support/poll.ts"
import { freePort } from "./support/ports.ts"
import { answer, makeReceiver } from "./support/receiver.ts"
import { throwawayRedis } from "./support/redis.ts"
import { TestDatabaseLive } from "./support/testDatabase.ts"
import { startTestServer, TestServer } from "./support/testServer.ts"

/**
 * The endpoints' circuits on Redis (`REDIS_URL`) through the real server, its worker and real receivers, when Redis
 * fails after startup (README "Resilience"): the probe of a half-open circuit holds a 10 s lease that is renewed while
 * it runs; with Redis gone, attempts run unguarded (fail open) and endpoint health reads `unknown`; when Redis is back
 * the circuits are guarded again. A throwaway redis-server of this file's own, never the machine's shared one.
 */

/**
 * The circuit's hash in Redis, and Redis' clock (`TIME`, what the breaker's scripts use) in milliseconds, read on a
 * short-lived connection of the test's own (not the server's).
 */
const circuitInRedis = (url: string, key: string) =>
  Effect.promise(async () => {
    const client = createClient({ url, socket: { reconnectStrategy: false } })
    await client.connect()
    try {
      const hash = await client.hGetAll(key)
      const [seconds = "0", micros = "0"] = (await client.sendCommand(["TIME"])) as ReadonlyArray<string>
      return { hash, nowMs: Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) }
    } finally {
      client.destroy()
    }
  })

const healthOf = (api: Api, id: string) =>
  api.endpoints.get({ params: { id } }).pipe(
    Effect.map((endpoint) => endpoint.health),
    Effect.orDie
  )

layer(TestDatabaseLive, { excludeTestServices: true })("endpoint circuits on Redis, Redis failing later", (it) => {
  it.effect(
    "probe lease renewed while the probe runs; Redis killed: fail open, health unknown; Redis back: guarded again",
    () =>
      Effect.gen(function* () {
        const port = yield* Effect.promise(freePort)
        const redis = yield* throwawayRedis(port)
        const prefix = `codex:test:outage:${randomBytes(6).toString("hex")}:`
        const server = yield* startTestServer({
          config: {
            // The probe is held longer than its lease (10 s): the attempt must not time out first.
            delivery: fastWorker({ maxAttempts: 10, timeout: Duration.seconds(30) }),
            redisUrl: Option.some(Redacted.make(redis.url)),
            breaker: {
              failureThreshold: 2,
              openBase: Duration.seconds(2),
              openMax: Duration.seconds(10),
              redisPrefix: prefix
            }
          }
        })

        // The receiver fails until told otherwise; then it holds the first request it gets (the probe) until the
        // test lets go, and answers everything else at once.
        let mode: "fail" | "hold" = "fail"
        let probe: ServerResponse | undefined
        const receiver = yield* makeReceiver((_, __, res) => {
          if (mode === "fail") return answer(res, 500)
          if (probe === undefined) {
            probe = res
            return
          }
          answer(res, 204)
        })

        yield* Effect.gen(function* () {
          const { api, endpointId } = yield* tenantWithEndpoint(receiver.url)
          const key = `${prefix}${endpointId}`

          // Two failed attempts in a row open the circuit, in Redis.
          const first = yield* publish(api, "order.created", { n: 1 })
          yield* poll("the circuit open", healthOf(api, endpointId), (h) => h.circuit === "open")
          assert.strictEqual(receiver.requests.length, 2)
          assert.strictEqual((yield* circuitInRedis(redis.url, key)).hash.state, "Open")

          // After the open period the next attempt is the one probe: it holds a lease in Redis while it runs.
          mode = "hold"
          yield* poll(
            "the probe sent",
            Effect.sync(() => probe),
            (p) => p !== undefined,
            { timeoutMs: 15_000 }
          )
          const atStart = yield* circuitInRedis(redis.url, key)
          assert.strictEqual(atStart.hash.state, "HalfOpen")
          const leaseAtStart = Number(atStart.hash.leaseUntil)
          assert.approximately(leaseAtStart - atStart.nowMs, 10_000, 1_000, "a 10 s probe lease")
          assert.strictEqual((yield* healthOf(api, endpointId)).circuit, "half_open")

          // Meanwhile the endpoint's other deliveries wait: one probe at a time, not four (the bulkhead).
          const waiting = [
            yield* publish(api, "order.created", { n: 2 }),
            yield* publish(api, "order.created", { n: 3 })
          ]

          // Past the first lease's end (by Redis' clock), the probe still holds the circuit: the lease was renewed,
          // so no second probe was let through.
          const later = yield* poll(
            "Redis' clock past the first lease",
            circuitInRedis(redis.url, key),
            (c) => c.nowMs > leaseAtStart + 500,
            { timeoutMs: 15_000 }
          )
          assert.strictEqual(later.hash.state, "HalfOpen")
          assert.isAbove(Number(later.hash.leaseUntil), later.nowMs, "the lease runs on")
          assert.strictEqual(receiver.requests.length, 3, "2 failures and the one probe, nothing else")
          for (const published of waiting) {
            const row = yield* deliveryOf(api, published.event.id)
            assert.deepStrictEqual([row?.status, row?.attemptCount], ["pending", 0])
          }
          assert.strictEqual((yield* healthOf(api, endpointId)).circuit, "half_open")

          // Redis goes away while the probe runs. Health cannot be read (and says so, at once); deliveries run
          // unguarded: the waiting ones and a new one are sent although the circuit in Redis still holds the probe.
          yield* Effect.promise(redis.kill)
          const unknown = yield* poll(
            "health unknown",
            Effect.gen(function* () {
              const started = performance.now()
              const health = yield* healthOf(api, endpointId)
              // (node-redis' offline queue once held each read ~5 s, until a timeout, during an outage)
              assert.isBelow(performance.now() - started, 4_000, "a health read does not wait for Redis")
              return health
            }),
            (health) => health.circuit === "unknown"
          )
          assert.deepStrictEqual(unknown, { circuit: "unknown", openUntil: null })
          for (const published of waiting)
            assert.strictEqual((yield* succeeded(api, published.event.id)).attemptCount, 1)
          // Without waiting on Redis either: a new event goes out as promptly as usual.
          const during = yield* publish(api, "order.created", { n: 4 })
          assert.strictEqual((yield* succeeded(api, during.event.id, 4_000)).attemptCount, 1)
          const logged = server.logs.join("\n")
          assert.include(logged, "CircuitBreaker store unavailable, running the call unrecorded")
          assert.include(logged, "circuit breaker: could not read an endpoint's circuit")
          assert.notInclude(logged, "NodeRedis", "the client's reconnection attempts are not logged one by one")

          // The probe's answer arrives: recorded as a delivery like any other (its outcome cannot reach Redis).
          probe?.writeHead(204).end()
          assert.strictEqual((yield* succeeded(api, first.event.id)).attemptCount, 3)
          assert.strictEqual(receiver.requests.length, 6)

          // Redis is back (empty: nothing was persisted). The client reconnects; circuits are read and kept again.
          yield* throwawayRedis(port)
          yield* poll("health read from Redis again", healthOf(api, endpointId), (h) => h.circuit === "closed", {
            timeoutMs: 20_000
          })
          const after = yield* publish(api, "order.created", { n: 5 })
          yield* succeeded(api, after.event.id)
          assert.strictEqual((yield* circuitInRedis(redis.url, key)).hash.state, "Closed", "guarded again")
        }).pipe(Effect.provideService(TestServer, server))
      }).pipe(Effect.scoped),
    { timeout: 90_000 }
  )
})
