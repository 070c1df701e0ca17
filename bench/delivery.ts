/**
 * Publish → delivery latency and deliveries per second against a local receiver (see scenarios/delivery.ts); also
 * scenario (d) of `npm run bench`.
 *
 *   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/codex_bench npm run bench:delivery
 *   (an empty or codex-api database; BENCH_LATENCY_EVENTS=500 BENCH_BURST_EVENTS=5000)
 */
import { containerNodeOptions } from "./lib.ts"
import { measureDelivery } from "./scenarios/delivery.ts"

const databaseUrl = process.env.BENCH_DATABASE_URL
if (databaseUrl === undefined) throw new Error("set BENCH_DATABASE_URL to a PostgreSQL database")
const figures = await measureDelivery(databaseUrl, "src/main.ts", {
  nodeOptions: containerNodeOptions(),
  latencyEvents: Number(process.env.BENCH_LATENCY_EVENTS ?? 500),
  burstEvents: Number(process.env.BENCH_BURST_EVENTS ?? 5000)
})
console.log(
  `latency    ${figures.latencyEvents} events one at a time: publish → receiver p50 ${figures.p50Ms} ms, ` +
    `p99 ${figures.p99Ms} ms, max ${figures.maxMs} ms`
)
console.log(
  `throughput ${figures.burstEvents} events: published at ${figures.publishedPerSecond}/s, ` +
    `delivered at ${figures.deliveredPerSecond} deliveries/s`
)
