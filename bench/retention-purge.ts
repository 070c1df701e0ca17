/**
 * Retention (issue 21): publishing while the purge removes a large backlog past retention. One tenant holds
 * `BENCH_RETENTION_EVENTS` events (200,000 by default) aged 31 to 60 days, each with 2 deliveries and 2 attempts
 * (1,000,000 old rows in all); another tenant publishes (2
 * endpoints, the compiled server, worker off) with autocannon, 10 connections, in rounds of `BENCH_RETENTION_SECONDS`:
 * 3 rounds idle, then rounds while one purge pass (the server's own code, RetentionPurgeLive) removes the backlog.
 * Target: publish p99 during the purge ≤ 1.5× idle. Also measures the bytes each table and index takes per row, for
 * the capacity figures in the README ("Retention"). Writes bench/results/retention-purge.md.
 *
 *   npm run bench:retention   (BENCH_DATABASE_URL: any database of the server; a scratch database
 *                              codex_bench_retention is made there and dropped after; 3-5 minutes)
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { runMigrations } from "../layers/Migrations.ts"
import { makeRetentionPurge } from "../layers/RetentionPurgeLive.ts"
import {
  containerNodeOptions,
  deliveryBenchEnv,
  dropScratchDatabase,
  type Load,
  load,
  median,
  postJson,
  scratchDatabase,
  startServer
} from "./lib.ts"

const events = Number(process.env.BENCH_RETENTION_EVENTS ?? 200_000)
const seconds = Number(process.env.BENCH_RETENTION_SECONDS ?? 8)
const serverUrl = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres"
const log = (line: string) => console.error(`[bench:retention] ${line}`)
const dayMs = 86_400_000

log("npm run build (codex-api is measured as compiled JavaScript, as the container runs it)")
execFileSync("npm", ["run", "build"], { stdio: ["ignore", "ignore", "inherit"] })

/** A payload of about 400 bytes, the size of a typical order event. */
const payloadSql = `json_build_object('orderId', 'ord_' || n, 'customer', json_build_object('id', 'cus_' || (n % 9973),
  'email', 'customer' || (n % 9973) || '@example.com', 'name', 'A. Customer'), 'currency', 'EUR', 'total', (n % 1000) + 0.5,
  'items', json_build_array(json_build_object('sku', 'sku-' || (n % 97), 'quantity', 1 + n % 3, 'price', 19.99),
  json_build_object('sku', 'sku-' || (n % 89), 'quantity', 1, 'price', 5.25)), 'shipping', json_build_object('city',
  'Lyon', 'country', 'FR', 'postcode', '69002'), 'note', 'leave at the door')::text`

interface Sizes {
  readonly name: string
  readonly rows: number
  readonly heapBytes: number
  readonly indexBytes: number
}

const seed = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* runMigrations
  // A ULID of a given time (ms), as the application makes them, with the random part of codex_ulid().
  yield* sql.unsafe(`
    CREATE FUNCTION bench_ulid_at(ms bigint) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
    DECLARE
      alphabet constant text := '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
      result text := '';
    BEGIN
      FOR i IN 1..10 LOOP
        result := substr(alphabet, (ms % 32)::int + 1, 1) || result;
        ms := ms / 32;
      END LOOP;
      RETURN result || substr(codex_ulid(), 11);
    END
    $$`)
  const [tenant] = yield* sql<{ readonly id: string }>`
    INSERT INTO tenants (id, name) VALUES ('ten_' || codex_ulid(), 'Old') RETURNING id`
  if (tenant === undefined) return yield* Effect.die(new Error("no tenant"))
  const endpoints = yield* sql<{ readonly id: string }>`
    INSERT INTO endpoints (id, tenant_id, url, secret)
    SELECT 'ep_' || codex_ulid(), ${tenant.id}, 'https://example.com/' || n, 's' FROM generate_series(1, 2) n
    RETURNING id`
  const start = Date.now() - 60 * dayMs
  const spanMs = 29 * dayMs
  log(`writing ${events.toLocaleString("en")} events 31-60 days old, 2 deliveries and 2 attempts each`)
  for (let done = 0; done < events; done += 50_000) {
    const batch = Math.min(50_000, events - done)
    yield* sql.unsafe(
      `
      WITH ev AS (
        INSERT INTO events (id, tenant_id, type, data, occurred_at, created_at)
        SELECT 'evt_' || bench_ulid_at(at_ms), $1, 'order.created', ${payloadSql}::json,
               to_timestamp(at_ms / 1000.0), to_timestamp(at_ms / 1000.0)
        FROM (SELECT n, ($2::bigint + n * $3::bigint) AS at_ms FROM generate_series($4::int, $5::int) n) s
        RETURNING id, created_at
      ), dl AS (
        INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, status, attempt_count, next_attempt_at,
                                last_status, delivered_at, created_at, updated_at)
        SELECT 'dlv_' || bench_ulid_at((extract(epoch FROM ev.created_at) * 1000)::bigint), $1, ev.id, e.id,
               'succeeded', 1, ev.created_at, 200, ev.created_at, ev.created_at, ev.created_at
        FROM ev CROSS JOIN (SELECT unnest($6::text[]) AS id) e
        RETURNING id, created_at
      )
      INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, outcome, status_code,
                                     response_excerpt)
      SELECT dl.id, 1, dl.created_at, 42, 'succeeded', 200, '{"received":true}' FROM dl`,
      [
        tenant.id,
        start,
        Math.floor(spanMs / events),
        done + 1,
        done + batch,
        `{${endpoints.map((e) => e.id).join(",")}}`
      ]
    )
  }
  yield* sql.unsafe("VACUUM ANALYZE")
  const sizes = yield* sql<Sizes>`
    SELECT c.relname AS name, c.reltuples::bigint::int AS rows,
           pg_relation_size(c.oid)::bigint::float8 AS "heapBytes", pg_indexes_size(c.oid)::bigint::float8 AS "indexBytes"
    FROM pg_class c WHERE c.relname IN ('events', 'deliveries', 'delivery_attempts') ORDER BY c.relname`
  return sizes
})

const purge = makeRetentionPurge(Duration.days(30))

const name = "codex_bench_retention"
const url = await scratchDatabase(serverUrl, name)
const database = PgClient.layer({ url: Redacted.make(url), maxConnections: 2 })
const run = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>) =>
  Effect.runPromise(effect.pipe(Effect.provide(database)))
try {
  const sizes = await run(seed)
  const server = await startServer(
    "codex-api",
    "dist/src/main.js",
    // The server's own purge waits a day: the pass measured is the one this script runs (the same code).
    deliveryBenchEnv(containerNodeOptions(), {
      DATABASE_URL: url,
      DELIVERY_WORKER: "false",
      RETENTION_PURGE_INTERVAL: "1 day"
    })
  )
  try {
    const created = (await postJson(`${server.base}/admin/tenants`, { name: "Live" })) as { apiKey: { key: string } }
    const auth = { authorization: `Bearer ${created.apiKey.key}` }
    for (let i = 0; i < 2; i++)
      await postJson(`${server.base}/v1/endpoints`, { url: `http://127.0.0.1:1029/${i}` }, auth)
    const body = JSON.stringify({
      type: "order.created",
      data: { orderId: "ord_1", total: 120.5, items: [{ sku: "a" }] }
    })
    const round = () =>
      load({
        url: `${server.base}/v1/events`,
        connections: 10,
        duration: seconds,
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body
      })
    await round() // warm-up
    const idle: Array<Load> = []
    for (let i = 1; i <= 3; i++) {
      idle.push(await round())
      log(`idle round ${i}: ${idle.at(-1)?.requestsPerSecond}/s, p99 ${idle.at(-1)?.p99Ms} ms`)
    }
    log("purging, publishing meanwhile")
    const started = performance.now()
    let purgeMs = 0
    let removed = 0
    const purging = run(Effect.flatMap(purge, (p) => p.purge)).then((report) => {
      purgeMs = performance.now() - started
      removed = report.events
    })
    let finished = false
    void purging.then(() => {
      finished = true
    })
    // Rounds that ended while the purge ran; a round it ended in counts only when it is the first.
    const during: Array<Load> = []
    do {
      const result = await round()
      if (!finished || during.length === 0) during.push(result)
      log(
        `round during the purge: ${result.requestsPerSecond}/s, p99 ${result.p99Ms} ms${finished ? " (it ended)" : ""}`
      )
    } while (!finished)
    await purging
    const p99 = (loads: ReadonlyArray<Load>) => median(loads.map((l) => l.p99Ms))
    const rate = (loads: ReadonlyArray<Load>) => median(loads.map((l) => l.requestsPerSecond))
    const ratio = Math.round((p99(during) / p99(idle)) * 100) / 100
    const rowsRemoved = removed * 5
    const perSecond = Math.round(rowsRemoved / (purgeMs / 1000))
    const bytes = (s: Sizes) => s.heapBytes + s.indexBytes
    const perRow = (s: Sizes) => (s.rows > 0 ? Math.round(bytes(s) / s.rows) : 0)
    const table = sizes
      .map(
        (s) =>
          `| ${s.name} | ${s.rows.toLocaleString("en")} | ${Math.round(s.heapBytes / s.rows)} | ` +
          `${Math.round(s.indexBytes / s.rows)} | ${perRow(s)} |`
      )
      .join("\n")
    const markdown =
      "## Retention purge\n\n" +
      `${new Date().toISOString()}: ${events.toLocaleString("en")} events 31-60 days old, 2 deliveries and 2 ` +
      `attempts each (${(events * 5).toLocaleString("en")} rows), removed by one purge pass (RetentionPurgeLive, ` +
      "its defaults: batches of 250 events, resting 4 times as long as each took) while another tenant publishes (2 endpoints, 10 connections, rounds of " +
      `${seconds} s, medians; the compiled server, worker off, PostgreSQL on the same machine). Written by ` +
      "`npm run bench:retention`.\n\n" +
      "| | publishes/s | p99 |\n|---|---|---|\n" +
      `| idle (3 rounds) | ${rate(idle)} | ${p99(idle)} ms |\n` +
      `| during the purge (${during.length} rounds) | ${rate(during)} | ${p99(during)} ms |\n\n` +
      `p99 during / idle: **${ratio}x** (target ≤ 1.5x: ${ratio <= 1.5 ? "met" : "**not met**"}). The purge removed ` +
      `${removed.toLocaleString("en")} events (${rowsRemoved.toLocaleString("en")} rows) in ` +
      `${Math.round(purgeMs / 100) / 10} s: ${perSecond.toLocaleString("en")} rows/s.\n\n` +
      "Bytes per row before the purge (heap at the tables' fillfactor, and all indexes):\n\n" +
      "| table | rows | heap B/row | index B/row | total B/row |\n|---|---|---|---|---|\n" +
      `${table}\n`
    mkdirSync("bench/results", { recursive: true })
    writeFileSync(join("bench/results", "retention-purge.md"), markdown)
    log(`p99 during / idle: ${ratio}x; wrote bench/results/retention-purge.md`)
  } finally {
    await server.stop()
  }
} finally {
  await dropScratchDatabase(serverUrl, name)
}
