/**
 * Worker throughput (issue 17): 10,000 queued deliveries drained by one worker process at concurrency 32, codex-api
 * beside graphile-worker, BullMQ and the bare loop doing the same job (see scenarios/worker-throughput.ts). Builds
 * codex-api first (its worker runs compiled, as the container runs it). Writes bench/results/worker-throughput.{json,md}
 * (not with BENCH_SMOKE or BENCH_WORKER_ROWS).
 *
 *   npm run bench:worker          (BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres: any database of the
 *                                  server, scratch databases codex_bench_worker and codex_bench_graphile are created
 *                                  there and dropped after; BENCH_WORKER_RUNS=3 BENCH_WORKER_EVENTS=100
 *                                  BENCH_WORKER_ENDPOINTS=100 BENCH_WORKER_CONCURRENCY=32; REDIS_URL = BullMQ's Redis,
 *                                  else a redis-server of its own)
 *   BENCH_WORKER_ROWS=codex,loop  only these rows: codex, codex-default, codex-2, graphile-attempt,
 *                                  graphile-attempt-batched, graphile, graphile-batched, bullmq, loop
 *   BENCH_CPU_PROF=/tmp/prof      a CPU profile (--cpu-prof) of the first codex-api single-worker drain, written there
 *   BENCH_SMOKE=1                 10 events × 30 endpoints, one run: the harness still works
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { containerNodeOptions } from "./lib.ts"
import { measureWorkerThroughput, workerThroughputTable } from "./scenarios/worker-throughput.ts"

const smoke = process.env.BENCH_SMOKE === "1" || process.env.BENCH_SMOKE === "true"
const log = (line: string) => console.error(`[bench:worker] ${line}`)

log("npm run build (codex-api's worker is measured as compiled JavaScript, as the container runs it)")
execFileSync("npm", ["run", "build"], { stdio: ["ignore", "ignore", "inherit"] })

const rows = process.env.BENCH_WORKER_ROWS ?? ""
const only = rows === "" ? undefined : rows.split(",").map((key) => key.trim())
const redisUrl = process.env.REDIS_URL
const cpuProfileDir = process.env.BENCH_CPU_PROF
const began = Date.now()
const figures = await measureWorkerThroughput(
  process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
  {
    nodeOptions: containerNodeOptions(),
    apiScript: "dist/src/main.js",
    workerScript: "dist/src/worker.js",
    events: Number(process.env.BENCH_WORKER_EVENTS ?? (smoke ? 10 : 100)),
    endpoints: Number(process.env.BENCH_WORKER_ENDPOINTS ?? (smoke ? 30 : 100)),
    concurrency: Number(process.env.BENCH_WORKER_CONCURRENCY ?? 32),
    runs: Number(process.env.BENCH_WORKER_RUNS ?? (smoke ? 1 : 3)),
    ...(only === undefined ? {} : { only }),
    ...(redisUrl === undefined || redisUrl === "" ? {} : { redisUrl }),
    ...(cpuProfileDir === undefined || cpuProfileDir === "" ? {} : { cpuProfileDir }),
    log
  }
)
const table = workerThroughputTable(figures)
console.log(table)
log(`${Math.round((Date.now() - began) / 1000)} s`)
// Only a full run (every row) is a result to keep.
if (!smoke && only === undefined) {
  const outDir = join("bench", "results")
  mkdirSync(outDir, { recursive: true })
  const meta = { date: new Date().toISOString(), node: process.version, elapsedSeconds: (Date.now() - began) / 1000 }
  writeFileSync(join(outDir, "worker-throughput.json"), `${JSON.stringify({ meta, ...figures }, null, 2)}\n`)
  writeFileSync(join(outDir, "worker-throughput.md"), `${table}\n`)
}
