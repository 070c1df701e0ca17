/**
 * Fan-out with payload filters (issue 20): publishing to a tenant with 100 endpoints, each with a payload filter,
 * against the same 100 endpoints without one. Target: publish throughput with filters ≥ 0.8× without. The compiled
 * server (worker off: the fan-out is what is measured) on PostgreSQL; autocannon, 10 connections, 3 alternating
 * rounds of 6 s each, medians. Every event matches every filter: both tenants write the same 100 deliveries per
 * publish, and the difference is the filters' evaluation. Writes bench/results/fanout-filters.md.
 *
 *   npm run bench:fanout     (BENCH_DATABASE_URL: any database of the server; a scratch database codex_bench_fanout
 *                             is made there and dropped after; about a minute)
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
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

const serverUrl = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres"
const rounds = Number(process.env.BENCH_FANOUT_ROUNDS ?? 3)
const seconds = Number(process.env.BENCH_FANOUT_SECONDS ?? 6)
const log = (line: string) => console.error(`[bench:fanout] ${line}`)

log("npm run build (codex-api is measured as compiled JavaScript, as the container runs it)")
execFileSync("npm", ["run", "build"], { stdio: ["ignore", "ignore", "inherit"] })

const filter = (i: number) => ({
  type: { $startsWith: "order." },
  data: { total: { $gte: 50 }, region: { $in: [`r${i % 10}`, "all"] }, $not: { status: "void" } }
})

/** A tenant with 100 endpoints (no receiver: the worker is off), filtered or not; its API key. */
const tenantWith = async (base: string, filtered: boolean) => {
  const created = (await postJson(`${base}/admin/tenants`, { name: filtered ? "Filtered" : "Unfiltered" })) as {
    apiKey: { key: string }
  }
  const auth = { authorization: `Bearer ${created.apiKey.key}` }
  for (let i = 0; i < 100; i++) {
    const body = { url: `http://127.0.0.1:1029/hook/${i}`, ...(filtered ? { filter: filter(i) } : {}) }
    await postJson(`${base}/v1/endpoints`, body, auth)
  }
  return created.apiKey.key
}

const name = "codex_bench_fanout"
const url = await scratchDatabase(serverUrl, name)
try {
  const server = await startServer(
    "codex-api",
    "dist/src/main.js",
    deliveryBenchEnv(containerNodeOptions(), { DATABASE_URL: url, DELIVERY_WORKER: "false" })
  )
  try {
    const keys = { plain: await tenantWith(server.base, false), filtered: await tenantWith(server.base, true) }
    // Every event matches every filter (region "all", a total above 50), with a field of its own each time.
    let n = 0
    const run = (key: string) =>
      load({
        url: `${server.base}/v1/events`,
        connections: 10,
        duration: seconds,
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        requests: [
          {
            setupRequest: (request) => {
              n++
              const data = { total: 120, region: "all", status: "paid", n, items: [{ sku: "a" }] }
              return { ...request, body: JSON.stringify({ type: "order.created", data }) }
            }
          }
        ]
      })
    await run(keys.plain)
    await run(keys.filtered)
    const plain: Array<Load> = []
    const filtered: Array<Load> = []
    for (let round = 1; round <= rounds; round++) {
      plain.push(await run(keys.plain))
      filtered.push(await run(keys.filtered))
      log(`round ${round}: without ${plain.at(-1)?.requestsPerSecond}/s, with ${filtered.at(-1)?.requestsPerSecond}/s`)
    }
    const rate = (loads: ReadonlyArray<Load>) => median(loads.map((l) => l.requestsPerSecond))
    const p99 = (loads: ReadonlyArray<Load>) => median(loads.map((l) => l.p99Ms))
    const ratio = Math.round((rate(filtered) / rate(plain)) * 100) / 100
    const errors = [...plain, ...filtered].reduce((sum, l) => sum + l.errors, 0)
    const markdown =
      "## Fan-out with payload filters\n\n" +
      `${new Date().toISOString()}: one tenant with 100 endpoints, publishing \`order.created\` events (10 connections, ` +
      `${rounds} alternating rounds of ${seconds} s after a warm-up, medians; the compiled server, worker off, ` +
      "PostgreSQL on the same machine). Each filter: `type` `$startsWith`, `data.total` `$gte`, `data.region` `$in`, " +
      "a `$not`; every event matches every filter (the same 100 deliveries per publish). Written by " +
      "`npm run bench:fanout`.\n\n" +
      "| endpoints | publishes/s | p99 | deliveries per publish |\n|---|---|---|---|\n" +
      `| 100 without filters | ${rate(plain)} | ${p99(plain)} ms | 100 |\n` +
      `| 100 with filters | ${rate(filtered)} | ${p99(filtered)} ms | 100 |\n\n` +
      `With filters / without: **${ratio}x** (target ≥ 0.8x: ${ratio >= 0.8 ? "met" : "**not met**"}); ${errors} errors.\n`
    mkdirSync("bench/results", { recursive: true })
    writeFileSync(join("bench/results", "fanout-filters.md"), markdown)
    log(`with / without: ${ratio}x; wrote bench/results/fanout-filters.md`)
  } finally {
    await server.stop()
  }
} finally {
  await dropScratchDatabase(serverUrl, name)
}
