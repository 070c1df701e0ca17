/**
 * The tenant-wide search (issue 19) on a million deliveries: each filter's query, as DeliveriesLive `search` and
 * EventsLive `list` build it, EXPLAIN (ANALYZE, BUFFERS)ed, to show which index serves it and how many pages it reads.
 * One tenant with 1,000,000 deliveries (20 endpoints; 1 in 10,000 failed, 1 in 1,000 pending; 1 in 10,000 events of a
 * rare type) beside 10 small tenants. Writes bench/results/search-plans.md.
 *
 *   npm run bench:search     (BENCH_DATABASE_URL: any database of the server; a scratch database codex_bench_search
 *                             is made there and dropped after; about 2 minutes, most of it writing the rows)
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { runMigrations } from "../layers/Migrations.ts"
import { firstIdAt } from "../src/domain/Ids.ts"
import { idClockSkewMs } from "../src/domain/Search.ts"
import { dropScratchDatabase, scratchDatabase } from "./lib.ts"

const rows = Number(process.env.BENCH_SEARCH_ROWS ?? 1_000_000)
const serverUrl = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres"
const log = (line: string) => console.error(`[bench:search] ${line}`)

interface Plan {
  readonly name: string
  readonly query: string
  readonly text: string
  readonly ms: number
  readonly pages: number
  readonly indexes: ReadonlyArray<string>
}

const program = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* runMigrations
  log(`writing ${rows.toLocaleString("en")} deliveries`)
  const [tenant] = yield* sql<{ readonly id: string }>`
    INSERT INTO tenants (id, name) VALUES ('ten_' || codex_ulid(), 'Big') RETURNING id`
  if (tenant === undefined) return yield* Effect.die(new Error("no tenant"))
  yield* sql`
    INSERT INTO tenants (id, name) SELECT 'ten_' || codex_ulid(), 'Small ' || n FROM generate_series(1, 10) n`
  yield* sql`
    INSERT INTO endpoints (id, tenant_id, url, secret)
    SELECT 'ep_' || codex_ulid(), t.id, 'https://example.com/' || n, 's'
    FROM tenants t CROSS JOIN generate_series(1, 20) n WHERE t.id = ${tenant.id}`
  // In batches of 100,000 events, each with one delivery: ids in creation order, as the API makes them.
  for (let done = 0; done < rows; done += 100_000) {
    const batch = Math.min(100_000, rows - done)
    yield* sql`
      WITH ev AS (
        INSERT INTO events (id, tenant_id, type, data, occurred_at)
        SELECT 'evt_' || codex_ulid(), ${tenant.id},
               CASE WHEN n % 10000 = 0 THEN 'rare.kind' WHEN n % 2 = 0 THEN 'order.created' ELSE 'invoice.paid' END,
               '{}', now()
        FROM generate_series(${done + 1}::int, ${done + batch}::int) n
        RETURNING id, type
      ), numbered AS (SELECT ev.*, row_number() OVER (ORDER BY ev.id) AS n FROM ev)
      INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, status)
      SELECT 'dlv_' || codex_ulid(), ${tenant.id}, numbered.id,
             (SELECT id FROM endpoints WHERE tenant_id = ${tenant.id} ORDER BY id OFFSET (numbered.n % 20) LIMIT 1),
             CASE WHEN numbered.n % 10000 = 7 THEN 'failed' WHEN numbered.n % 1000 = 3 THEN 'pending'
                  ELSE 'succeeded' END
      FROM numbered`
    log(`${(done + batch).toLocaleString("en")}`)
  }
  yield* sql`VACUUM ANALYZE deliveries`
  yield* sql`VACUUM ANALYZE events`
  const [endpoint] = yield* sql<{ readonly id: string }>`
    SELECT id FROM endpoints WHERE tenant_id = ${tenant.id} ORDER BY id LIMIT 1`
  const t = tenant.id
  const e = endpoint?.id ?? ""
  const dayAgo = Date.now() - 86_400_000
  const hourAgo = new Date(Date.now() - 60_000)
  const since = `AND d.id >= '${firstIdAt("dlv", hourAgo.getTime() - idClockSkewMs)}' AND d.created_at >= '${hourAgo.toISOString()}'`
  const select = "SELECT d.id FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id"
  // Retention, as layers/RetentionSql.ts writes it (RETENTION 30 days): every read keeps what is not past it.
  const cutoff = `(now() - make_interval(secs => coalesce((SELECT rt.retention_seconds FROM tenants rt WHERE rt.id = '${t}'), 2592000::float8)))`
  const retainedEvent = (alias: string) =>
    `AND (${alias}.created_at >= ${cutoff} OR (SELECT rp.id FROM deliveries rp WHERE rp.event_id = ${alias}.id AND (rp.status || '') = 'pending' LIMIT 1) IS NOT NULL)`
  const page = `AND (d.created_at >= ${cutoff} OR d.status = 'pending') ORDER BY d.id DESC LIMIT 51`
  const queries: ReadonlyArray<readonly [string, string]> = [
    ["every delivery, newest first", `${select} WHERE d.tenant_id = '${t}' ${page}`],
    ["status=failed (1 in 10,000)", `${select} WHERE d.tenant_id = '${t}' AND d.status = 'failed' ${page}`],
    ["status=pending (1 in 1,000)", `${select} WHERE d.tenant_id = '${t}' AND d.status = 'pending' ${page}`],
    ["status=succeeded", `${select} WHERE d.tenant_id = '${t}' AND d.status = 'succeeded' ${page}`],
    ["endpointId", `${select} WHERE d.tenant_id = '${t}' AND d.endpoint_id = '${e}' ${page}`],
    [
      "endpointId + status=failed",
      `${select} WHERE d.tenant_id = '${t}' AND d.status = 'failed' AND d.endpoint_id = '${e}' ${page}`
    ],
    [
      "eventType (1 in 10,000)",
      `${select} WHERE d.tenant_id = '${t}' AND d.event_id IN (SELECT ev.id FROM events ev WHERE ev.tenant_id = '${t}' AND ev.type = 'rare.kind') ${page}`
    ],
    [
      "eventType (1 in 2)",
      `${select} WHERE d.tenant_id = '${t}' AND d.event_id IN (SELECT ev.id FROM events ev WHERE ev.tenant_id = '${t}' AND ev.type = 'order.created') ${page}`
    ],
    ["since (the last minute)", `${select} WHERE d.tenant_id = '${t}' ${since} ${page}`],
    [
      "until (a day ago: nothing)",
      `${select} WHERE d.tenant_id = '${t}' AND d.id < '${firstIdAt("dlv", dayAgo + idClockSkewMs)}' AND d.created_at < '${new Date(dayAgo).toISOString()}' ${page}`
    ],
    [
      "GET /v1/events/{id}/deliveries",
      `${select} WHERE d.tenant_id = '${t}' AND d.event_id = (SELECT id FROM events WHERE tenant_id = '${t}' ORDER BY id DESC LIMIT 1) AND (d.created_at >= ${cutoff} OR d.status = 'pending') ORDER BY d.id`
    ],
    [
      "events, type=order.*",
      `SELECT id FROM events ev WHERE tenant_id = '${t}' AND starts_with(type, 'order.') ${retainedEvent("ev")} ORDER BY id DESC LIMIT 51`
    ],
    [
      "events, type=rare.kind",
      `SELECT id FROM events ev WHERE tenant_id = '${t}' AND type = 'rare.kind' ${retainedEvent("ev")} ORDER BY id DESC LIMIT 51`
    ]
  ]
  const plans: Array<Plan> = []
  for (const [name, query] of queries) {
    // Twice: the second run is measured (pages cached, as a busy server's are).
    yield* sql.unsafe(`EXPLAIN (ANALYZE) ${query}`)
    const lines = yield* sql.unsafe<{ readonly "QUERY PLAN": string }>(`EXPLAIN (ANALYZE, BUFFERS) ${query}`)
    const text = lines.map((line) => line["QUERY PLAN"]).join("\n")
    const ms = Number(/Execution Time: ([\d.]+) ms/.exec(text)?.[1] ?? Number.NaN)
    const pages = [...text.matchAll(/shared hit=(\d+)(?: read=(\d+))?/g)]
      .slice(0, 1)
      .reduce((sum, m) => sum + Number(m[1]) + Number(m[2] ?? 0), 0)
    const indexes = [...new Set([...text.matchAll(/using (\w+)/g)].map((m) => m[1] ?? ""))]
    plans.push({ name, query, text, ms, pages, indexes })
    log(`${name}: ${ms} ms, ${pages} pages, ${indexes.join(", ")}`)
  }
  return plans
})

const name = "codex_bench_search"
const url = await scratchDatabase(serverUrl, name)
try {
  const began = Date.now()
  const plans = await Effect.runPromise(
    program.pipe(
      Effect.provide(Layer.fresh(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 }))),
      Effect.orDie
    )
  )
  const table = plans
    .map((p) => `| ${p.name} | ${p.indexes.map((i) => `\`${i}\``).join(", ")} | ${p.pages} | ${p.ms} |`)
    .join("\n")
  const details = plans
    .map((p) => `### ${p.name}\n\n\`\`\`sql\n${p.query}\n\`\`\`\n\n\`\`\`\n${p.text}\n\`\`\``)
    .join("\n\n")
  const markdown =
    `## Search plans on ${rows.toLocaleString("en")} deliveries\n\n` +
    `${new Date().toISOString()}, PostgreSQL at ${new URL(serverUrl).host}: one tenant with ${rows.toLocaleString("en")} ` +
    "deliveries over 20 endpoints (1 in 10,000 failed, 1 in 1,000 pending; 1 event in 10,000 of a rare type) beside 10 " +
    "small tenants; a page of 50 (LIMIT 51), pages cached, each query as the API builds it. " +
    `Written by \`npm run bench:search\` in ${Math.round((Date.now() - began) / 1000)} s.\n\n` +
    "| search | index | pages read | ms |\n|---|---|---|---|\n" +
    `${table}\n\n${details}\n`
  mkdirSync("bench/results", { recursive: true })
  writeFileSync(join("bench/results", "search-plans.md"), markdown)
  log("wrote bench/results/search-plans.md")
} finally {
  await dropScratchDatabase(serverUrl, name)
}
