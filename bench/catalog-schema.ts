/**
 * Publishing with the event-type catalog (issue 22), alone (`npm run bench` runs it too, as its table (c)): see
 * bench/scenarios/catalog-schema.ts. Target: throughput with the schema ≥ 0.9× without. The compiled server (worker
 * off) on PostgreSQL; autocannon, 10 connections, 3 alternating rounds of 6 s each after a warm-up, medians. Writes
 * bench/results/catalog-schema.md.
 *
 *   npm run bench:schema     (BENCH_DATABASE_URL: any database of the server; a scratch database codex_bench_schema
 *                             is made there and dropped after; about a minute)
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { containerNodeOptions, deliveryBenchEnv, dropScratchDatabase, scratchDatabase, startServer } from "./lib.ts"
import { measureCatalogSchema } from "./scenarios/catalog-schema.ts"

const serverUrl = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres"
const rounds = Number(process.env.BENCH_SCHEMA_ROUNDS ?? 3)
const seconds = Number(process.env.BENCH_SCHEMA_SECONDS ?? 6)
const log = (line: string) => console.error(`[bench:schema] ${line}`)

log("npm run build (codex-api is measured as compiled JavaScript, as the container runs it)")
execFileSync("npm", ["run", "build"], { stdio: ["ignore", "ignore", "inherit"] })

const name = "codex_bench_schema"
const url = await scratchDatabase(serverUrl, name)
try {
  const server = await startServer(
    "codex-api",
    "dist/src/main.js",
    deliveryBenchEnv(containerNodeOptions(), { DATABASE_URL: url, DELIVERY_WORKER: "false" })
  )
  try {
    const figures = await measureCatalogSchema({
      base: server.base,
      adminHeaders: {},
      rounds,
      seconds,
      warmupSeconds: 2,
      connections: 10,
      log
    })
    const { plain, schema, ratio } = figures
    const errors = plain.errors + schema.errors
    const markdown =
      "## Publishing with a catalog schema\n\n" +
      `${new Date().toISOString()}: publishing \`order.created\` events with one endpoint (10 connections, ${rounds} ` +
      `alternating rounds of ${seconds} s after a warm-up, medians; the compiled server, worker off, PostgreSQL on ` +
      "the same machine), a tenant without a catalog (no catalog query) against a tenant whose type has a realistic " +
      "JSON Schema (nested " +
      "lines, `email` and `date-time` formats, an enum, a pattern) validated on every publish by its cached compiled " +
      "validator (one indexed lookup and the validation). Written by `npm run bench:schema`.\n\n" +
      "| type | publishes/s | p99 |\n|---|---|---|\n" +
      `| no catalog | ${plain.requestsPerSecond} | ${plain.p99Ms} ms |\n` +
      `| with a schema | ${schema.requestsPerSecond} | ${schema.p99Ms} ms |\n\n` +
      `With schema / without: **${ratio}x** (target ≥ 0.9x: ${ratio >= 0.9 ? "met" : "**not met**"}); ${errors} errors.\n`
    mkdirSync("bench/results", { recursive: true })
    writeFileSync(join("bench/results", "catalog-schema.md"), markdown)
    log(`with / without: ${ratio}x; wrote bench/results/catalog-schema.md`)
  } finally {
    await server.stop()
  }
} finally {
  await dropScratchDatabase(serverUrl, name)
}
