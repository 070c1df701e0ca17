import type { ServerResponse } from "node:http"
import { assert, layer } from "@effect/vitest"
import { Duration, Effect, Option } from "effect"
import pg from "pg"
import { fastWorker, publish, succeeded, tenantWithEndpoint } from "./support/deliveryApi.ts"
import { poll } from "./support/poll.ts"
import { answer, headerOf, makeReceiver } from "./support/receiver.ts"
import { TestDatabase } from "./support/testDatabase.ts"
import { TestServer, testServer } from "./support/testServer.ts"

/**
 * Issue 17, "hot endpoint": one endpoint receiving ~100 events/s lagged by seconds in the drill, its deliveries
 * waiting to be claimed. Two costs per delivery made its slots turn over slowly: every publish's NOTIFY woke every
 * worker into a claim, though the endpoint was at its cap everywhere (4.4 claims per delivery, three in four empty,
 * each one a statement and a turn of the claim loop that a freed slot then waited for); and a slot stayed taken after
 * the request was over, through the circuit's and the database's bookkeeping. On PostgreSQL (the worker LISTENs; the
 * poll is an hour away, so every claim here follows a wake-up), with the worker's claims counted in its debug log.
 */

const claimsIn = (logs: ReadonlyArray<string>) => logs.filter((line) => line.includes('"delivery: claimed"')).length

layer(
  testServer({
    config: {
      logLevel: "Debug",
      delivery: fastWorker({ endpointConcurrency: 2, pollInterval: Duration.hours(1), timeout: Duration.seconds(30) })
    }
  }),
  { excludeTestServices: true }
)("a hot endpoint at its cap", (it) => {
  it.effect(
    "a NOTIFY naming only an endpoint at its cap runs no claim; each slot its sends free runs one",
    () =>
      Effect.gen(function* () {
        const { logs } = yield* TestServer
        const held: Array<ServerResponse> = []
        const hotReceiver = yield* makeReceiver((_, __, res) => {
          held.push(res)
        })
        const quietReceiver = yield* makeReceiver((_, __, res) => answer(res, 204))
        const hot = yield* tenantWithEndpoint(hotReceiver.url)
        const quiet = yield* tenantWithEndpoint(quietReceiver.url)

        // The hot endpoint at its cap (2): both requests held by its receiver.
        for (let n = 0; n < 2; n++) yield* publish(hot.api, "order.created", { n })
        yield* poll(
          "the hot endpoint at its cap",
          Effect.sync(() => held.length),
          (n) => n === 2
        )
        // NOTIFYs reach the worker in commit order, and its claims run one after another: once another tenant's event
        // has arrived (and been recorded), every wake-up before it has had its claim.
        const first = yield* publish(quiet.api, "order.created", { n: 0 })
        yield* succeeded(quiet.api, first.event.id)
        const before = claimsIn(logs)

        // Ten more for the hot endpoint, each a NOTIFY naming it, while it is at its cap: nothing to claim.
        const backlog = 10
        for (let n = 2; n < 2 + backlog; n++) yield* publish(hot.api, "order.created", { n })
        const sentinel = yield* publish(quiet.api, "order.created", { n: 1 })
        yield* poll(
          "the sentinel delivered",
          Effect.sync(() => quietReceiver.requests.some((r) => headerOf(r, "webhook-id") === sentinel.event.id)),
          (arrived) => arrived
        )
        const duringBacklog = claimsIn(logs) - before
        // The sentinel's own claim, and at most one left over from the first quiet delivery's end; without the
        // filter each of the ten publishes woke the worker into a claim of its own.
        assert.isAtMost(duringBacklog, 2, `claims while the hot endpoint was at its cap: ${duringBacklog}`)
        assert.strictEqual(hotReceiver.requests.length, 2, "nothing more sent to the endpoint at its cap")

        // Each answer frees a slot: one claim takes the next delivery, until all twelve are in.
        const atAnswers = claimsIn(logs)
        for (let answered = 0; answered < 2 + backlog; answered++) {
          yield* poll(
            `a request held after ${answered} answered`,
            Effect.sync(() => held.length),
            (n) => n > 0
          )
          const next = held.shift()
          if (next !== undefined) answer(next, 204)
        }
        yield* poll(
          "every hot delivery sent",
          Effect.sync(() => hotReceiver.requests.length),
          (n) => n === 2 + backlog
        )
        const refills = claimsIn(logs) - atAnswers
        assert.isAtMost(refills, 2 + backlog + 2, `claims for ${2 + backlog} freed slots: ${refills}`)
      }),
    { timeout: 60_000 }
  )
})

layer(
  testServer({
    config: {
      delivery: fastWorker({ endpointConcurrency: 1, pollInterval: Duration.hours(1), timeout: Duration.seconds(30) })
    }
  }),
  { excludeTestServices: true }
)("an endpoint's slot once its request is over", (it) => {
  it.effect(
    "the next delivery to an endpoint at its cap goes out when the request ends, before the attempt is recorded",
    () =>
      Effect.gen(function* () {
        const database = yield* TestDatabase
        const url = Option.getOrThrow(database.url)
        let first: ServerResponse | undefined
        const receiver = yield* makeReceiver((index, __, res) => {
          if (index === 0) first = res
          else answer(res, 204)
        })
        const { api } = yield* tenantWithEndpoint(receiver.url)
        const e1 = yield* publish(api, "order.created", { n: 1 })
        const e2 = yield* publish(api, "order.created", { n: 2 })
        yield* poll(
          "the first request held",
          Effect.sync(() => first),
          (res) => res !== undefined
        )

        // The first delivery's row locked by another transaction: recording its attempt (FOR KEY SHARE) waits.
        const locker = new pg.Client({ connectionString: url })
        yield* Effect.acquireRelease(
          Effect.promise(() => locker.connect()),
          () => Effect.promise(() => locker.end())
        )
        yield* Effect.promise(() => locker.query("BEGIN"))
        const locked = yield* Effect.promise(() =>
          locker.query("SELECT id FROM deliveries WHERE event_id = $1 FOR UPDATE", [e1.event.id])
        )
        assert.strictEqual(locked.rowCount, 1)

        // The request ends: the endpoint (cap 1) takes its next delivery although the first one's record is stuck.
        if (first !== undefined) answer(first, 204)
        yield* poll(
          "the second request, while the first attempt cannot be recorded",
          Effect.sync(() => receiver.requests.length),
          (n) => n === 2
        )
        const stuck = yield* Effect.promise(() =>
          locker.query<{ status: string }>("SELECT status FROM deliveries WHERE event_id = $1", [e1.event.id])
        )
        assert.strictEqual(stuck.rows[0]?.status, "pending", "the first attempt not recorded yet")

        yield* Effect.promise(() => locker.query("COMMIT"))
        assert.strictEqual((yield* succeeded(api, e1.event.id)).attemptCount, 1)
        assert.strictEqual((yield* succeeded(api, e2.event.id)).attemptCount, 1)
      }),
    { timeout: 60_000 }
  )
})
