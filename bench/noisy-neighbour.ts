/**
 * The quiet tenant's publish → delivery latency while a noisy tenant's 64 endpoints hang (see
 * scenarios/noisy-neighbour.ts). Target (issue 17): p90 < 250 ms.
 *
 *   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/codex_bench_noisy npm run bench:noisy-neighbour
 *   (an empty or codex-api database; BENCH_QUIET_EVENTS=200)
 */
import { containerNodeOptions } from "./lib.ts"
import { measureNoisyNeighbour } from "./scenarios/noisy-neighbour.ts"

const databaseUrl = process.env.BENCH_DATABASE_URL
if (databaseUrl === undefined) throw new Error("set BENCH_DATABASE_URL to a PostgreSQL database")
const figures = await measureNoisyNeighbour(databaseUrl, "src/main.ts", {
  nodeOptions: containerNodeOptions(),
  quietEvents: Number(process.env.BENCH_QUIET_EVENTS ?? 200)
})
console.log(
  `noisy neighbour: ${figures.noisyEndpoints} endpoints hanging on ${figures.noisyDeliveries} deliveries ` +
    `(${figures.noisyInFlight} in flight); quiet tenant, ${figures.quietEvents} events one at a time: ` +
    `publish → receiver p50 ${figures.p50Ms} ms, p90 ${figures.p90Ms} ms, max ${figures.maxMs} ms`
)
