/**
 * Publish → delivery latency on the embedded database (see scenarios/embedded-delivery.ts); also scenario (d) of
 * `npm run bench`, PGlite row. A few seconds, no PostgreSQL needed.
 *
 *   npm run bench:delivery-embedded   (BENCH_LATENCY_EVENTS=200)
 */
import { containerNodeOptions } from "./lib.ts"
import { measureEmbeddedDelivery } from "./scenarios/embedded-delivery.ts"

const figures = await measureEmbeddedDelivery("src/main.ts", {
  nodeOptions: containerNodeOptions(),
  events: Number(process.env.BENCH_LATENCY_EVENTS ?? 200)
})
console.log(
  `embedded (PGlite) ${figures.events} events one at a time: publish → receiver p50 ${figures.p50Ms} ms, ` +
    `p90 ${figures.p90Ms} ms, p99 ${figures.p99Ms} ms, max ${figures.maxMs} ms`
)
