import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { inject } from "vitest"
import { testEncryptionKeysEnv } from "./support/appConfig.ts"
import { publish } from "./support/deliveryApi.ts"
import { apiClient, createTenant, request } from "./support/http.ts"
import { poll } from "./support/poll.ts"
import { expectProblem } from "./support/problems.ts"
import { startWorkerProcess } from "./support/processes.ts"
import { answer, makeReceiver } from "./support/receiver.ts"
import { SharedDatabase, testServerWithSql } from "./support/sharedDatabase.ts"

/**
 * The per-endpoint throttle (issue 20): `rateLimit` deliveries per second, never exceeded at the receiver, counted
 * across worker processes (the claim grants turns in the database), every event still delivered, and no attempt used
 * by waiting. Two worker processes polling once a second (as in production): only the throttle's own timer explains a
 * rate above one delivery per poll.
 */

const workerEnv = (databaseUrl: string): NodeJS.ProcessEnv => ({
  ...process.env,
  APP_ENV: "development",
  LOG_FORMAT: "json",
  DATABASE_URL: databaseUrl,
  DELIVERY_POLL_INTERVAL: "1 second",
  ENCRYPTION_KEYS: testEncryptionKeysEnv
})

const startWorker = (databaseUrl: string) => startWorkerProcess(workerEnv(databaseUrl))

/** The most arrivals within any window of `windowMs` (half-open), over the arrival times. */
const maxInWindow = (times: ReadonlyArray<number>, windowMs: number) => {
  const sorted = [...times].sort((a, b) => a - b)
  let best = 0
  let start = 0
  for (let end = 0; end < sorted.length; end++) {
    while ((sorted[end] ?? 0) - (sorted[start] ?? 0) >= windowMs) start++
    best = Math.max(best, end - start + 1)
  }
  return best
}

const mode = inject("testDatabase")

describe.skipIf(mode.kind === "pglite")("the throttle across worker processes (needs a PostgreSQL server)", () => {
  layer(testServerWithSql(), { excludeTestServices: true, timeout: "120 seconds" })("endpoint throttle", (it) => {
    it.effect(
      "5/s with two worker processes: never more than 5 in any second at the receiver, every event delivered",
      () =>
        Effect.gen(function* () {
          const shared = yield* SharedDatabase
          const sql = yield* SqlClient.SqlClient
          const receiver = yield* makeReceiver((_, __, res) => answer(res, 204))
          const tenant = yield* createTenant("Throttled")
          const api = yield* apiClient(tenant.apiKey)
          const endpoint = yield* api.endpoints.create({ payload: { url: receiver.url, rateLimit: 5 } })
          assert.strictEqual(endpoint.rateLimit, 5)
          const events = 20
          for (let i = 0; i < events; i++) yield* publish(api, "order.created", { i })
          yield* startWorker(shared.url)
          yield* startWorker(shared.url)
          yield* poll(
            `all ${events} deliveries`,
            Effect.sync(() => new Set(receiver.requests.map((r) => r.headers["webhook-id"])).size),
            (n) => n === events,
            { timeoutMs: 60_000, intervalMs: 100 }
          )
          const busiest = maxInWindow(
            receiver.requests.map((r) => r.at),
            1000
          )
          assert.isAtMost(busiest, 5, `${busiest} arrivals within one second`)
          assert.strictEqual(receiver.requests.length, events, "each sent once")
          // Waiting used no attempt: one each.
          const [counts] = yield* sql<{ readonly attempts: number; readonly deliveries: number }>`
          SELECT sum(attempt_count)::int AS attempts, count(*)::int AS deliveries
          FROM deliveries WHERE endpoint_id = ${endpoint.id}`
          assert.deepStrictEqual(counts, { attempts: events, deliveries: events })
          console.log(`[throttle] 5/s: ${events} deliveries, at most ${busiest} in any second`)

          // The limit is the endpoint's own setting: shown, changed, removed; out of range is a 400.
          const removed = yield* api.endpoints.update({ params: { id: endpoint.id }, payload: { rateLimit: null } })
          assert.isNull(removed.rateLimit)
          for (const rateLimit of [0, -1, 1.5, 10_001, "5"]) {
            const response = yield* request(`/v1/endpoints/${endpoint.id}`, {
              method: "PATCH",
              bearer: tenant.apiKey,
              json: { rateLimit }
            })
            expectProblem(response, 400)
          }
        })
    )
  })
})
