/**
 * Publish → delivery against a local receiver (node:http on 127.0.0.1, answering 204 at once) through a codex-api
 * process on PostgreSQL with its worker (LISTEN/NOTIFY):
 *
 *   latency     events published one at a time: publish request sent → receiver has the body (p50, p99, max)
 *   throughput  a burst published by 32 concurrent publishers: deliveries per second, first publish to last delivery
 */
import { deliveryBenchEnv, percentile, startServer } from "../lib.ts"
import { oneAtATimeLatencies, tenantPublishingTo } from "./publishing.ts"
import { startReceiver } from "./receiver.ts"

export interface DeliveryFigures {
  readonly latencyEvents: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
  readonly burstEvents: number
  readonly publishedPerSecond: number
  readonly deliveredPerSecond: number
}

export const measureDelivery = async (
  databaseUrl: string,
  script: string,
  options: {
    /** Node flags of the server process (the container's). */
    readonly nodeOptions: string
    readonly latencyEvents: number
    readonly burstEvents: number
  }
): Promise<DeliveryFigures> => {
  const receiver = await startReceiver()
  const server = await startServer(
    "codex-api",
    script,
    deliveryBenchEnv(options.nodeOptions, { DATABASE_URL: databaseUrl })
  )
  try {
    const publish = await tenantPublishingTo(server.base, receiver, "delivery bench")
    const arrived = receiver.arrived
    const latencies = await oneAtATimeLatencies(publish, receiver, options.latencyEvents)

    const burstStart = performance.now()
    const ids: Array<string> = []
    let next = 0
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < options.burstEvents) ids.push(await publish(next++))
      })
    )
    const published = performance.now()
    let last = 0
    for (const id of ids) last = Math.max(last, await arrived(id))
    const round = (n: number) => Math.round(n * 10) / 10
    return {
      latencyEvents: options.latencyEvents,
      p50Ms: round(percentile(latencies, 50)),
      p99Ms: round(percentile(latencies, 99)),
      maxMs: round(latencies.at(-1) ?? Number.NaN),
      burstEvents: options.burstEvents,
      publishedPerSecond: Math.round(options.burstEvents / ((published - burstStart) / 1000)),
      deliveredPerSecond: Math.round(options.burstEvents / ((last - burstStart) / 1000))
    }
  } finally {
    await server.stop()
    receiver.close()
  }
}
