import { assert, describe, it, layer } from "@effect/vitest"
import { Duration, Effect, Option, type Scope } from "effect"
import { SqlClient } from "effect/sql"
import {
  outboxStateStatement,
  pendingCountCap,
  readMaxAge,
  readOutboxState,
  readTimeout
} from "../layers/OutboxStatsLive.ts"
import { DatabaseProxy, testServerBehindProxy } from "./support/databaseProxy.ts"
import { inMemoryTracing, type OtlpRequest, spansOf } from "./support/inMemoryTracing.ts"
import { type Exposition, gaugeOf, scrape, scrapeUntil, scrapeUrl, sumOf } from "./support/metrics.ts"
import { poll } from "./support/poll.ts"
import { freePort } from "./support/ports.ts"
import { testServerWithSql } from "./support/sharedDatabase.ts"
import { TestDatabaseLive, TestSqlLive } from "./support/testDatabase.ts"
import { startTestServer, TestServer } from "./support/testServer.ts"

/**
 * `webhook_deliveries_pending` and `webhook_outbox_oldest_age_seconds`: read from the database when /metrics is
 * scraped (layers/OutboxStatsLive.ts), on the real server, with deliveries written straight into its database. The
 * delivery worker is off (the default in tests), so what is inserted stays as inserted.
 */

const pendingOf = (e: Exposition) => gaugeOf(e, "webhook_deliveries_pending")
const oldestOf = (e: Exposition) => gaugeOf(e, "webhook_outbox_oldest_age_seconds")

/** One scrape answers from a read at most `readMaxAge` old: a change shows within that, plus slack. */
const changeDeadlineMs = Duration.toMillis(readMaxAge) + 10_000

interface Owner {
  readonly tenantId: string
  readonly endpointId: string
}

/** A tenant with one endpoint, written with SQL; deleted (with its events and deliveries) when the scope closes. */
const outboxOwner: Effect.Effect<Owner, never, SqlClient.SqlClient | Scope.Scope> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  return yield* Effect.acquireRelease(
    Effect.gen(function* () {
      const [tenant] = yield* sql<{ readonly id: string }>`
        INSERT INTO tenants (id, name) VALUES ('ten_' || codex_ulid(), 'Outbox gauges') RETURNING id`
      const tenantId = tenant?.id ?? ""
      const [endpoint] = yield* sql<{ readonly id: string }>`
        INSERT INTO endpoints (id, tenant_id, url, secret)
        VALUES ('ep_' || codex_ulid(), ${tenantId}, 'http://127.0.0.1:9/never-called', 'unused')
        RETURNING id`
      return { tenantId, endpointId: endpoint?.id ?? "" }
    }).pipe(Effect.orDie),
    (owner) => sql`DELETE FROM tenants WHERE id = ${owner.tenantId}`.pipe(Effect.orDie)
  )
})

type Status = "pending" | "succeeded" | "failed" | "cancelled"

/** One event and its delivery, in `status`, next attempt `dueInSeconds` from the database's now (negative: overdue). */
const insertDelivery = (owner: Owner, status: Status, dueInSeconds: number) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ readonly id: string }>`
      WITH ev AS (
        INSERT INTO events (id, tenant_id, type, data, occurred_at)
        VALUES ('evt_' || codex_ulid(), ${owner.tenantId}, 'outbox.test', '{}', now())
        RETURNING id
      )
      INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, status, next_attempt_at)
      SELECT 'dlv_' || codex_ulid(), ${owner.tenantId}, ev.id, ${owner.endpointId}, ${status},
             now() + make_interval(secs => ${dueInSeconds})
      FROM ev
      RETURNING id`
    return row?.id ?? ""
  }).pipe(Effect.orDie)

const setStatus = (deliveryId: string, status: Status) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`UPDATE deliveries SET status = ${status} WHERE id = ${deliveryId}`
  }).pipe(Effect.orDie)

/** The database's now, in epoch seconds (the gauges use its clock, not this process's). */
const databaseNow = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const [row] = yield* sql<{ readonly now: number }>`SELECT extract(epoch FROM now())::float8 AS now`
  return Number(row?.now)
}).pipe(Effect.orDie)

layer(testServerWithSql(), { excludeTestServices: true })("the outbox gauges on the real server", (it) => {
  it.effect(
    "pending = due + scheduled deliveries; oldest age = now() - the oldest due one's next_attempt_at; 0 when none is due",
    () =>
      Effect.gen(function* () {
        // Nothing pending yet: both gauges are there, at 0 (not absent).
        const empty = yield* scrapeUntil("an empty outbox", (e) => pendingOf(e) === 0, changeDeadlineMs)
        assert.strictEqual(oldestOf(empty), 0)

        const owner = yield* outboxOwner
        const insertedAt = yield* databaseNow
        const tenMinutesLate = yield* insertDelivery(owner, "pending", -600)
        const oneMinuteLate = yield* insertDelivery(owner, "pending", -60)
        yield* insertDelivery(owner, "pending", 60) // scheduled: a retry's backoff, or deferred by an open circuit
        yield* insertDelivery(owner, "pending", 3600)
        // Finished deliveries are not in the outbox, however old their next_attempt_at.
        for (const status of ["succeeded", "failed", "cancelled"] as const) yield* insertDelivery(owner, status, -7200)

        const four = yield* scrapeUntil("4 pending deliveries", (e) => pendingOf(e) === 4, changeDeadlineMs)
        let waited = (yield* databaseNow) - insertedAt
        const oldest = oldestOf(four) ?? -1
        assert.isAtLeast(oldest, 600 - 1, "the 10-minute-late delivery")
        assert.isAtMost(oldest, 600 + waited + 1)

        // The oldest is delivered: the next oldest due one is a minute late.
        const deliveredAt = yield* databaseNow
        yield* setStatus(tenMinutesLate, "succeeded")
        const three = yield* scrapeUntil("3 pending deliveries", (e) => pendingOf(e) === 3, changeDeadlineMs)
        waited = (yield* databaseNow) - deliveredAt
        const next = oldestOf(three) ?? -1
        assert.isAtLeast(next, 60 - 1)
        assert.isAtMost(next, 60 + (deliveredAt - insertedAt) + waited + 1)

        // Only scheduled deliveries left: pending, but none due, so no age.
        yield* setStatus(oneMinuteLate, "cancelled")
        const scheduledOnly = yield* scrapeUntil("2 pending deliveries", (e) => pendingOf(e) === 2, changeDeadlineMs)
        assert.strictEqual(oldestOf(scheduledOnly), 0)
      }).pipe(Effect.scoped),
    { timeout: 90_000 }
  )
})

describe("METRICS_PORT", () => {
  // Outside the layer above: a server built inside it would share that server's memoized layers.
  it.live("the gauges are also read for METRICS_PORT scrapes (the bare listener)", () =>
    Effect.gen(function* () {
      const port = yield* Effect.promise(freePort)
      const server = yield* startTestServer({ config: { metricsPort: Option.some(port) } })
      const exposition = yield* scrapeUrl(`http://127.0.0.1:${port}/metrics`)
      assert.isNumber(pendingOf(exposition))
      assert.isNumber(oldestOf(exposition))
      yield* server.shutdown
    }).pipe(Effect.scoped, Effect.provide(TestDatabaseLive))
  )
})

describe("the outbox query", () => {
  layer(TestSqlLive, { excludeTestServices: true })("on a database of its own", (it) => {
    it.effect(
      "reads indexes only (EXPLAIN, 20,000 deliveries, 2% pending); the count stops at the cap",
      () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          // 100 endpoints x 200 events, 1 in 50 still pending, due from 2 hours ago to 1 hour ahead.
          yield* sql`INSERT INTO tenants (id, name) VALUES ('ten_' || codex_ulid(), 'Outbox plan')`
          yield* sql`
          INSERT INTO endpoints (id, tenant_id, url, secret)
          SELECT 'ep_' || codex_ulid(), (SELECT id FROM tenants WHERE name = 'Outbox plan'), 'http://127.0.0.1:9/x', 's'
          FROM generate_series(1, 100)`
          yield* sql`
          INSERT INTO events (id, tenant_id, type, data, occurred_at)
          SELECT 'evt_' || codex_ulid(), (SELECT id FROM tenants WHERE name = 'Outbox plan'), 'plan.test', '{}', now()
          FROM generate_series(1, 200)`
          yield* sql`
          INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, status, next_attempt_at)
          SELECT 'dlv_' || codex_ulid(), ev.tenant_id, ev.id, ep.id,
                 CASE WHEN row_number() OVER () % 50 = 0 THEN 'pending' ELSE 'succeeded' END,
                 now() - interval '2 hours' + (row_number() OVER () % 10800) * interval '1 second'
          FROM events ev CROSS JOIN endpoints ep`
          // What autovacuum does to a table this size (and what lets the planner use index-only scans).
          yield* sql`VACUUM ANALYZE deliveries`

          const [text, params] = outboxStateStatement(sql).compile()
          const [explained] = yield* sql.unsafe<{ readonly "QUERY PLAN": unknown }>(
            `EXPLAIN (FORMAT JSON) ${text}`,
            params
          )
          interface PlanNode {
            readonly "Node Type": string
            readonly "Index Name"?: string
            readonly "Relation Name"?: string
            readonly Plans?: ReadonlyArray<PlanNode>
          }
          const raw = explained?.["QUERY PLAN"]
          const plan: unknown = typeof raw === "string" ? JSON.parse(raw) : raw
          const root = (Array.isArray(plan) ? plan[0] : undefined) as { readonly Plan: PlanNode } | undefined
          const nodes: Array<PlanNode> = []
          const walk = (node: PlanNode) => {
            nodes.push(node)
            for (const child of node.Plans ?? []) walk(child)
          }
          if (root !== undefined) walk(root.Plan)
          const described = JSON.stringify(plan)
          // The count goes through deliveries_due_idx, the oldest age through deliveries_endpoint_due_idx (a probe per
          // endpoint with pending deliveries); nothing reads deliveries sequentially (100 endpoints may be read so).
          const onDeliveries = nodes.filter((node) => node["Relation Name"] === "deliveries")
          assert.sameMembers(
            [...new Set(onDeliveries.map((node) => node["Index Name"]))],
            ["deliveries_due_idx", "deliveries_endpoint_due_idx"],
            described
          )

          const [counted] = yield* sql<{ readonly n: number }>`
          SELECT count(*)::int AS n FROM deliveries WHERE status = 'pending'`
          const state = yield* readOutboxState(sql)
          assert.strictEqual(state.pending, counted?.n)
          assert.isAbove(state.pending, 100)
          assert.isBelow(state.pending, pendingCountCap)
          // Past the cap the count reads the cap.
          assert.strictEqual((yield* readOutboxState(sql, 7)).pending, 7)
          // The oldest pending one was due 2 hours ago (give or take the first rows' offsets).
          assert.isAtLeast(state.oldestAgeSeconds, 7000)
          assert.isAtMost(state.oldestAgeSeconds, 7200 + 120)
          // Its endpoint paused (an open circuit), the oldest is another endpoint's: the age is that one's.
          const [oldest] = yield* sql<{ readonly endpoint_id: string; readonly age: number }>`
            SELECT endpoint_id, extract(epoch FROM now() - next_attempt_at)::float8 AS age FROM deliveries
            WHERE status = 'pending' ORDER BY next_attempt_at LIMIT 1`
          yield* sql`UPDATE endpoints SET paused_until = now() + interval '1 minute' WHERE id = ${oldest?.endpoint_id ?? ""}`
          const [others] = yield* sql<{ readonly age: number }>`
            SELECT extract(epoch FROM now() - min(d.next_attempt_at))::float8 AS age FROM deliveries d
            JOIN endpoints ep ON ep.id = d.endpoint_id WHERE d.status = 'pending' AND ep.paused_until IS NULL`
          const paused = yield* readOutboxState(sql)
          assert.isBelow(paused.oldestAgeSeconds, oldest?.age ?? 0)
          assert.approximately(paused.oldestAgeSeconds, others?.age ?? -1, 5)
          // Paused endpoints' deliveries still count as pending.
          assert.strictEqual(paused.pending, state.pending)
          // Every endpoint paused: nothing the workers could take is waiting.
          yield* sql`UPDATE endpoints SET paused_until = now() + interval '1 minute'`
          assert.strictEqual((yield* readOutboxState(sql)).oldestAgeSeconds, 0)
        }).pipe(Effect.orDie),
      { timeout: 60_000 }
    )
  })
})

/** A scrape, timed. */
const timedScrape = Effect.gen(function* () {
  const started = performance.now()
  const exposition = yield* scrape
  return { exposition, ms: performance.now() - started }
})

/** No scrape may wait longer than the read's timeout, plus slack for a loaded machine. */
const scrapeBoundMs = Duration.toMillis(readTimeout) + 1_500

/** Scrapes until the outbox gauges are absent (or present again), checking each scrape's time and the rest. */
const scrapeUntilOutbox = (present: boolean, what: string) =>
  poll(
    what,
    Effect.gen(function* () {
      const { exposition, ms } = yield* timedScrape
      assert.isAtMost(ms, scrapeBoundMs, `a scrape took ${Math.round(ms)} ms (${what})`)
      // Everything else is still reported.
      assert.strictEqual(exposition.types.get("http_requests_total"), "counter")
      assert.isAbove(sumOf(exposition, "process_cpu_seconds_total"), 0)
      assert.strictEqual(exposition.types.get("webhook_deliveries_pending"), "gauge")
      assert.strictEqual(exposition.types.get("webhook_outbox_oldest_age_seconds"), "gauge")
      const pending = pendingOf(exposition)
      const oldest = oldestOf(exposition)
      // Both or neither: they come from one read.
      assert.strictEqual(pending === undefined, oldest === undefined)
      return exposition
    }),
    (exposition) => (pendingOf(exposition) !== undefined) === present,
    {
      timeoutMs: Duration.toMillis(readMaxAge) + Duration.toMillis(readTimeout) + 15_000,
      intervalMs: 100,
      show: (exposition) => `pending ${pendingOf(exposition)}, oldest ${oldestOf(exposition)}`
    }
  )

layer(testServerBehindProxy, { excludeTestServices: true })("the outbox gauges with the database down", (it) => {
  it.effect(
    "a database that hangs or refuses: /metrics still answers 200 at once, without the two gauges; back when it is",
    () =>
      Effect.gen(function* () {
        const proxy = yield* DatabaseProxy
        const { logs } = yield* TestServer
        // Each failed read is logged as a warning (README "Metrics").
        const warnings = () =>
          logs
            .map((line) => JSON.parse(line) as Record<string, unknown>)
            .filter((e) => e.message === "metrics: could not read the outbox; its gauges are left out of this scrape")
        yield* scrapeUntilOutbox(true, "the gauges while the database is up")
        assert.deepStrictEqual(warnings(), [])

        // Hangs: no error, no answer. The read gives up after its timeout; the scrape answers without the gauges.
        proxy.stall()
        yield* scrapeUntilOutbox(false, "the gauges gone while the database hangs")
        const afterHang = warnings()
        assert.isNotEmpty(afterHang)
        for (const warning of afterHang) assert.strictEqual(warning.level, "warn")
        proxy.restore()
        yield* scrapeUntilOutbox(true, "the gauges back after the hang")

        // Refuses: connections cut, new ones closed at once.
        proxy.cut()
        yield* scrapeUntilOutbox(false, "the gauges gone while the database refuses")
        assert.isAbove(warnings().length, afterHang.length, "the outage logged too")
        proxy.restore()
        yield* scrapeUntilOutbox(true, "the gauges back after the outage")
      }),
    { timeout: 90_000 }
  )
})

describe("the outbox gauges under a flood of scrapes", () => {
  it.live("hundreds of concurrent scrapes share one read per READ_MAX_AGE, never two at once", () =>
    Effect.gen(function* () {
      const requests: Array<OtlpRequest> = []
      const server = yield* startTestServer({ tracing: inMemoryTracing(requests) })
      const scrapeOnce = Effect.promise(async () => {
        const response = await fetch(`${server.baseUrl}/metrics`, { signal: AbortSignal.timeout(10_000) })
        const text = await response.text()
        return { status: response.status, pending: /^webhook_deliveries_pending (\S+)$/m.exec(text)?.[1] }
      })
      const started = Date.now()
      const results: Array<{ readonly status: number; readonly pending: string | undefined }> = []
      // 300 scrapes in 3 waves of 100 concurrent ones.
      for (let wave = 0; wave < 3; wave++) {
        results.push(...(yield* Effect.forEach(Array.from({ length: 100 }), () => scrapeOnce, { concurrency: 100 })))
      }
      const elapsedMs = Date.now() - started
      assert.isTrue(
        results.every((r) => r.status === 200 && r.pending === "0"),
        JSON.stringify(results.filter((r) => r.status !== 200 || r.pending !== "0").slice(0, 5))
      )
      // The shutdown flushes the spans still buffered.
      yield* server.shutdown
      const reads = spansOf(requests).filter((span) => span.name === "OutboxStats.read")
      assert.isAtLeast(reads.length, 1)
      const allowed = Math.ceil(elapsedMs / Duration.toMillis(readMaxAge)) + 1
      assert.isAtMost(reads.length, allowed, `${reads.length} reads for 300 scrapes in ${elapsedMs} ms`)
      const ordered = [...reads].sort((a, b) =>
        Number(BigInt(a.startTimeUnixNano ?? "0") - BigInt(b.startTimeUnixNano ?? "0"))
      )
      for (let i = 1; i < ordered.length; i++) {
        const previousEnd = BigInt(ordered[i - 1]?.endTimeUnixNano ?? "0")
        assert.isTrue(BigInt(ordered[i]?.startTimeUnixNano ?? "0") >= previousEnd, "two reads in flight at once")
      }
    }).pipe(Effect.scoped, Effect.provide(TestDatabaseLive))
  )
})
