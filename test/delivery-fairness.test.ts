import type { ServerResponse } from "node:http"
import { assert, describe, layer } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { SqlClient } from "effect/sql"
import { insertDueBacklog } from "./support/backlog.ts"
import { type Api, fastWorker, publish, tenantWithEndpoint } from "./support/deliveryApi.ts"
import { apiClient, createTenant } from "./support/http.ts"
import { parsedLogs } from "./support/observedServer.ts"
import { isDefined, poll } from "./support/poll.ts"
import { answer, makeReceiver, type Receiver } from "./support/receiver.ts"
import { testServerWithSql } from "./support/sharedDatabase.ts"
import { TestServer, testServer } from "./support/testServer.ts"

/**
 * Fairness between tenants (issue 17), on the real server, the real database and real receivers on 127.0.0.1:
 * DELIVERY_TENANT_CONCURRENCY bounds what one tenant holds in flight in a process, and the claim hands out free slots
 * to the tenant with the fewest sends in flight first, so neither a tenant whose receivers hang nor one with a long
 * backlog delays the others. The send timeout (60 s) outlasts every wait here: a hanging request never times out and
 * frees its slot behind the test's back, so only the cap and the claim's order can explain what arrives.
 */

const hangingTimeout = Duration.seconds(60)

/** A receiver that never answers: every request is held (and counted) until the test ends. */
const hangingReceiver = Effect.gen(function* () {
  const held: Array<ServerResponse> = []
  const receiver = yield* makeReceiver((_, __, res) => {
    held.push(res)
  })
  return { receiver, held }
})

/** A tenant with `count` endpoints, all at `url`. */
const tenantWithEndpoints = (name: string, url: string, count: number) =>
  Effect.gen(function* () {
    const tenant = yield* createTenant(name)
    const api = yield* apiClient(tenant.apiKey)
    for (let n = 0; n < count; n++) yield* api.endpoints.create({ payload: { url: `${url}?n=${n}` } })
    return { api, tenantId: tenant.tenantId }
  }).pipe(Effect.orDie)

const publishEach = (api: Api, events: number) =>
  Effect.forEach(
    Array.from({ length: events }, (_, n) => n),
    (n) => publish(api, "noisy.event", { n }),
    {
      discard: true
    }
  )

/** Waits (well within the send timeout) for `receiver`'s first request. */
const firstArrival = (what: string, receiver: Receiver) =>
  poll(
    what,
    Effect.sync(() => receiver.requests[0]),
    isDefined,
    { timeoutMs: 20_000 }
  )

layer(
  testServer({
    config: {
      delivery: fastWorker({ concurrency: 8, endpointConcurrency: 4, tenantConcurrency: 4, timeout: hangingTimeout })
    }
  }),
  { excludeTestServices: true }
)("a noisy tenant", (it) => {
  it.effect(
    "tenant A's 8 endpoints hang on 24 deliveries; tenant B's delivery arrives meanwhile, A still at its cap of 4",
    () =>
      Effect.gen(function* () {
        const noisy = yield* hangingReceiver
        const a = yield* tenantWithEndpoints("Noisy", noisy.receiver.url, 8)
        yield* publishEach(a.api, 3)
        // A takes what it may of the worker's 8 slots (all 8 of them without a tenant cap) ...
        yield* poll(
          "A's sends hanging",
          Effect.sync(() => noisy.held.length),
          (n) => n >= 4
        )

        // ... and B, publishing after, is still delivered while every one of A's sends hangs.
        const quiet = yield* makeReceiver((_, __, res) => answer(res, 204))
        const b = yield* tenantWithEndpoint(quiet.url)
        for (let n = 0; n < 3; n++) {
          yield* publish(b.api, "quiet.event", { n })
          yield* poll(
            `B's delivery ${n} while A's hang`,
            Effect.sync(() => quiet.requests.length),
            (count) => count > n,
            { timeoutMs: 20_000 }
          )
        }
        assert.strictEqual(noisy.held.length, 4, "A holds exactly its cap, its other deliveries wait")
        assert.isTrue(
          noisy.held.every((res) => !res.writableEnded),
          "none of A's requests was answered"
        )
      }),
    { timeout: 90_000 }
  )
})

describe("DELIVERY_TENANT_CONCURRENCY", () => {
  for (const cap of [2, 5]) {
    layer(
      testServer({
        config: {
          delivery: fastWorker({
            concurrency: 8,
            endpointConcurrency: 4,
            tenantConcurrency: cap,
            timeout: hangingTimeout
          })
        }
      }),
      { excludeTestServices: true }
    )(`cap ${cap}`, (it) => {
      it.effect(
        `at most ${cap} of one tenant's sends in flight of 8 slots; each answer lets exactly one more through`,
        () =>
          Effect.gen(function* () {
            const hanging = yield* hangingReceiver
            let most = 0
            const a = yield* tenantWithEndpoints("Capped", hanging.receiver.url, 4)
            yield* publishEach(a.api, 3)
            const total = 12
            for (let answered = 0; answered < total; answered++) {
              const expected = Math.min(cap, total - answered)
              yield* poll(
                `${expected} sends in flight after ${answered} answered`,
                Effect.sync(() => {
                  most = Math.max(most, hanging.held.length)
                  assert.isAtMost(hanging.held.length, cap, `more than ${cap} of the tenant's requests in flight`)
                  return hanging.held.length
                }),
                (inFlight) => inFlight === expected
              )
              const next = hanging.held.shift()
              if (next !== undefined) answer(next, 204)
            }
            assert.strictEqual(most, cap)
            assert.strictEqual(hanging.receiver.requests.length, total, "one request per delivery")
            // The start-up line names the caps the worker runs with.
            const { logs } = yield* TestServer
            const [started] = parsedLogs(logs).filter((entry) => entry.message === "delivery worker started")
            assert.deepInclude(started, { concurrency: 8, tenantConcurrency: cap, endpointConcurrency: 4 })
          }),
        { timeout: 90_000 }
      )
    })
  }
})

const backlogEndpoints = 10
const backlogEvents = 500
const backlog = backlogEndpoints * backlogEvents

layer(
  testServerWithSql({
    config: {
      // No tenant cap (A may take every slot): only the claim's order can let B through.
      delivery: fastWorker({ concurrency: 8, endpointConcurrency: 4, tenantConcurrency: 8, timeout: hangingTimeout })
    }
  }),
  { excludeTestServices: true }
)("a tenant's backlog", (it) => {
  it.effect(
    `tenant A's ${backlog} older due deliveries at a slow receiver; B's new delivery goes out long before they drain`,
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        // Slow but answering: 20 ms a request, so A's backlog takes seconds to drain through 8 slots.
        const slow = yield* makeReceiver((_, __, res) => {
          setTimeout(() => answer(res, 204), 20)
        })
        const a = yield* tenantWithEndpoints("Backlog", slow.url, backlogEndpoints)
        // The backlog, due an hour ago: written in one statement, it wakes nobody; the worker's poll finds it.
        yield* insertDueBacklog(sql, { tenantId: a.tenantId, events: backlogEvents })
        yield* poll(
          "A's backlog draining",
          Effect.sync(() => slow.requests.length),
          (n) => n >= 8
        )

        const quiet = yield* makeReceiver((_, __, res) => answer(res, 204))
        const b = yield* tenantWithEndpoint(quiet.url)
        yield* publish(b.api, "quiet.event")
        const arrived = yield* firstArrival("B's delivery", quiet)
        const aBefore = slow.requests.filter((r) => r.at < arrived.at).length
        // Time order would send all of A's older deliveries first; the fair claim sends B's at the next free slot.
        assert.isBelow(aBefore, backlog / 10, `B's delivery arrived after ${aBefore} of A's ${backlog}`)
      }),
    { timeout: 90_000 }
  )
})
