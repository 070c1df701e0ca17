import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { inject } from "vitest"
import { testEncryptionKeysEnv } from "./support/appConfig.ts"
import { publish, tenantWithEndpoint } from "./support/deliveryApi.ts"
import { poll } from "./support/poll.ts"
import { type Service, startWorkerProcess } from "./support/processes.ts"
import { answer, makeReceiver, type Receiver } from "./support/receiver.ts"
import { SharedDatabase, testServerWithSql } from "./support/sharedDatabase.ts"

/**
 * Delivery workers as real processes (`src/worker.ts`, what `npm run worker` runs) sharing one PostgreSQL database:
 * the work is shared without duplicates, a killed worker's leases expire and are taken over, a terminated worker
 * hands its unfinished work back at once. The API (in process, its own worker off) publishes the events.
 */

/** A worker process's settings: short timeout (its lease: timeout + the default 30 s margin = 31 s), quick retries. */
const workerEnv = (databaseUrl: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
  ...process.env,
  APP_ENV: "development",
  LOG_FORMAT: "json",
  LOG_LEVEL: "debug",
  DATABASE_URL: databaseUrl,
  DELIVERY_TIMEOUT: "1 second",
  DELIVERY_BACKOFF_BASE: "100 millis",
  DELIVERY_BACKOFF_MAX: "1 second",
  DELIVERY_POLL_INTERVAL: "200 millis",
  // The in-process API's key: the workers open the signing secrets it sealed.
  ENCRYPTION_KEYS: testEncryptionKeysEnv,
  ...extra
})

type Worker = Service<string>

/** A worker process with these settings (see startWorkerProcess). */
const startWorker = (databaseUrl: string, extra: Record<string, string> = {}) =>
  startWorkerProcess(workerEnv(databaseUrl, extra))

const attemptsLogged = (worker: Worker) => worker.logs().filter((entry) => entry.message === "delivery attempt").length

const distinctIds = (receiver: Receiver) => new Set(receiver.requests.map((r) => r.headers["webhook-id"])).size

/** How many of the tenant's deliveries are in each state, and how many are leased. */
const deliveryStates = (tenantId: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ readonly status: string; readonly leased: boolean; readonly n: number }>`
      SELECT status, locked_by IS NOT NULL AS leased, count(*)::int AS n FROM deliveries
      WHERE tenant_id = ${tenantId} GROUP BY 1, 2`
    const count = (status: string, leased?: boolean) =>
      rows
        .filter((r) => r.status === status && (leased === undefined || r.leased === leased))
        .reduce((sum, r) => sum + r.n, 0)
    return { count, rows }
  }).pipe(Effect.orDie)

const attemptOutcomes = (tenantId: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    return yield* sql<{ readonly outcome: string; readonly n: number }>`
      SELECT a.outcome, count(*)::int AS n FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
      WHERE d.tenant_id = ${tenantId} GROUP BY 1`
  }).pipe(Effect.orDie)

const leasedBy = (workerId: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ readonly n: number }>`
      SELECT count(*)::int AS n FROM deliveries WHERE locked_by = ${workerId} AND status = 'pending'`
    return row?.n ?? 0
  }).pipe(Effect.orDie)

/** The events of the pending deliveries `workerId` holds (one endpoint per test: an event is a delivery). */
const eventsLeasedBy = (workerId: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ readonly event_id: string }>`
      SELECT event_id FROM deliveries WHERE locked_by = ${workerId} AND status = 'pending'`
    return new Set(rows.map((row) => row.event_id))
  }).pipe(Effect.orDie)

/** Polls the database until every one of `total` deliveries of the tenant succeeded. */
const allSucceeded = (tenantId: string, total: number, timeoutMs: number) =>
  poll(
    `all ${total} deliveries to succeed`,
    deliveryStates(tenantId),
    (states) => states.count("succeeded") === total,
    {
      timeoutMs,
      intervalMs: 50,
      show: (states) => JSON.stringify(states.rows)
    }
  )

const publishMany = (api: Parameters<typeof publish>[0], n: number) =>
  Effect.forEach(
    Array.from({ length: n }, (_, i) => i),
    (i) => publish(api, "order.created", { i }),
    { concurrency: 16 }
  )

const mode = inject("testDatabase")

describe.skipIf(mode.kind === "pglite")("delivery workers as processes (needs a PostgreSQL server)", () => {
  layer(testServerWithSql(), { excludeTestServices: true, timeout: "180 seconds" })("worker processes", (it) => {
    it.effect(
      "a worker process polling once a minute is woken by the API's NOTIFY: each event arrives well before the poll",
      () =>
        Effect.gen(function* () {
          const shared = yield* SharedDatabase
          const receiver = yield* makeReceiver((_, __, res) => answer(res, 204))
          const { api } = yield* tenantWithEndpoint(receiver.url)
          // In another process the API's in-process wake-up cannot reach it: only NOTIFY explains a delivery.
          const worker = yield* startWorker(shared.url, { DELIVERY_POLL_INTERVAL: "60 seconds" })
          const started = worker.logs().find((entry) => entry.message === "delivery worker started")
          assert.strictEqual(started?.listening, true, JSON.stringify(started))
          for (let i = 0; i < 10; i++) {
            const { event } = yield* publish(api, "order.created", { i })
            yield* poll(
              `event ${i} delivered by the worker process (without NOTIFY it waits for the 60 s poll)`,
              Effect.sync(() => receiver.requests.some((r) => r.headers["webhook-id"] === event.id)),
              (arrived) => arrived,
              { timeoutMs: 10_000 }
            )
          }
        }).pipe(Effect.scoped),
      60_000
    )

    it.effect(
      "two workers, 1,000 events: every delivery sent exactly once, the work shared",
      () =>
        Effect.gen(function* () {
          const shared = yield* SharedDatabase
          const receiver = yield* makeReceiver((_, __, res) => answer(res, 204))
          const { api, tenantId } = yield* tenantWithEndpoint(receiver.url)
          // A generous timeout: on two shared cores a send may wait long for CPU, and a timeout is a (retried) failure.
          const env = { DELIVERY_TIMEOUT: "10 seconds" }
          const workers = [yield* startWorker(shared.url, env), yield* startWorker(shared.url, env)]

          yield* publishMany(api, 1000)
          yield* allSucceeded(tenantId, 1000, 60_000)

          assert.strictEqual(distinctIds(receiver), 1000)
          const outcomes = yield* attemptOutcomes(tenantId)
          assert.strictEqual(receiver.requests.length, 1000, `no delivery was sent twice: ${JSON.stringify(outcomes)}`)
          const perWorker = workers.map(attemptsLogged)
          assert.strictEqual(
            perWorker.reduce((a, b) => a + b, 0),
            1000
          )
          for (const n of perWorker) assert.isAbove(n, 0, `both workers took part: ${perWorker.join(" + ")}`)
          console.log(`1,000 deliveries by two worker processes: ${perWorker.join(" + ")} attempts`)
        }).pipe(Effect.scoped),
      120_000
    )

    it.effect(
      "a worker killed (SIGKILL) mid-batch: its leases expire, the other worker delivers everything (at least once)",
      () =>
        Effect.gen(function* () {
          const shared = yield* SharedDatabase
          // Slow answers keep many sends in flight when the victim dies.
          const receiver = yield* makeReceiver(async (_, __, res) => {
            await new Promise((resolve) => setTimeout(resolve, 200))
            answer(res, 204)
          })
          const { api, tenantId } = yield* tenantWithEndpoint(receiver.url)
          // The victim's leases last DELIVERY_TIMEOUT + DELIVERY_LEASE_MARGIN = 5 + 5 s (26 s with the default margin): long
          // enough that a victim starved of CPU by other tests still records what it sent before they run out (at 3 s
          // they ran out under a load average of 8, and the survivor's repeats were not the victim's unrecorded sends).
          // 16 sends per endpoint (not 4): more in flight when the victim dies, and the 300 go through in seconds.
          // A 5 s timeout (not 1 s): on a loaded machine a 200 ms answer must not time out, since a timed-out attempt
          // the receiver did get is a repeat of its own, not one of an orphaned lease.
          const busy = { DELIVERY_ENDPOINT_CONCURRENCY: "16", DELIVERY_TIMEOUT: "5 seconds" }
          const victim = yield* startWorker(shared.url, { ...busy, DELIVERY_LEASE_MARGIN: "5s" })
          yield* startWorker(shared.url, busy)

          yield* publishMany(api, 300)
          yield* poll("the victim to hold leases", leasedBy(victim.ready), (n) => n > 0, { timeoutMs: 30_000 })
          victim.child.kill("SIGKILL")
          const { signal } = yield* Effect.promise(() => victim.exited)
          assert.strictEqual(signal, "SIGKILL")
          // What the victim had sent and not yet recorded (its batch of completions died with it) is among these.
          const unrecorded = yield* eventsLeasedBy(victim.ready)
          const orphaned = unrecorded.size
          assert.isAbove(orphaned, 0, "the victim died holding leases")

          // Once its leases run out, the survivor takes them over.
          yield* allSucceeded(tenantId, 300, 90_000)
          assert.strictEqual(distinctIds(receiver), 300)
          // At least once, and only where a lease was orphaned: a delivery is sent again only if the victim may have
          // sent it before dying, so there are at most as many repeats as orphaned leases, and none twice.
          const duplicates = receiver.requests.length - 300
          assert.isAtMost(duplicates, orphaned, "repeats only of deliveries whose lease the victim held")
          const sends = new Map<string, number>()
          for (const request of receiver.requests) {
            const id = String(request.headers["webhook-id"])
            sends.set(id, (sends.get(id) ?? 0) + 1)
          }
          assert.isAtMost(Math.max(...sends.values()), 2, "no delivery sent more than twice")
          const repeated = [...sends].filter(([, n]) => n > 1).map(([id]) => id)
          for (const id of repeated) assert.isTrue(unrecorded.has(id), `${id} was recorded, yet sent again`)
          console.log(
            `SIGKILL mid-batch: ${orphaned} leases orphaned, all 300 delivered, ${duplicates} duplicate sends (same webhook-id)`
          )
        }).pipe(Effect.scoped),
      150_000
    )

    it.effect(
      "a worker terminated (SIGTERM) with sends in flight: they finish or are released; none lost, none falsely done",
      () =>
        Effect.gen(function* () {
          const shared = yield* SharedDatabase
          const receiver = yield* makeReceiver(async (_, __, res) => {
            await new Promise((resolve) => setTimeout(resolve, 300))
            answer(res, 204)
          })
          const { api, tenantId } = yield* tenantWithEndpoint(receiver.url)
          const first = yield* startWorker(shared.url, { DELIVERY_CONCURRENCY: "4" })
          yield* publishMany(api, 40)
          yield* poll(
            "sends in flight",
            Effect.sync(() => receiver.requests.length),
            (n) => n >= 2,
            { timeoutMs: 30_000 }
          )

          first.child.kill("SIGTERM")
          const exit = yield* Effect.promise(() => first.exited)
          assert.strictEqual(exit.code, 0, JSON.stringify(first.logs().slice(-5)))
          const after = yield* deliveryStates(tenantId)
          assert.strictEqual(after.count("failed"), 0)
          assert.strictEqual(after.count("pending", true), 0, "no lease left behind")
          const delivered = after.count("succeeded")
          assert.isAbove(delivered, 0, "in-flight sends finished")
          assert.isAtMost(delivered, distinctIds(receiver), "nothing is marked delivered that was not sent")
          assert.strictEqual(delivered + after.count("pending", false), 40)

          // Released, not leased: a new worker takes the rest at once (long before a 31 s lease would expire).
          yield* startWorker(shared.url)
          yield* allSucceeded(tenantId, 40, 20_000)
          assert.strictEqual(distinctIds(receiver), 40)
        }).pipe(Effect.scoped),
      90_000
    )
  })
})
