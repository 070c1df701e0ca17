/**
 * Publish → delivery on the embedded database (PGlite, no `DATABASE_URL`: the default `npm start`), where the API and
 * the worker share one process and a pool of one connection, so the worker cannot LISTEN: events published one at a
 * time to a local receiver answering 204, publish request sent → receiver has the body (p50, p90, p99, max).
 */
import { deliveryBenchEnv, percentile, startServer } from "../lib.ts"
import { oneAtATimeLatencies, tenantPublishingTo } from "./publishing.ts"
import { startReceiver } from "./receiver.ts"

export interface EmbeddedDeliveryFigures {
  readonly events: number
  readonly p50Ms: number
  readonly p90Ms: number
  readonly p99Ms: number
  readonly maxMs: number
}

export const measureEmbeddedDelivery = async (
  script: string,
  options: {
    /** Node flags of the server process (the container's). */
    readonly nodeOptions: string
    readonly events: number
  }
): Promise<EmbeddedDeliveryFigures> => {
  const receiver = await startReceiver()
  const server = await startServer(
    "codex-api (PGlite)",
    script,
    deliveryBenchEnv(options.nodeOptions, { DATABASE_URL: "", PGLITE_DIR: "memory://" })
  )
  try {
    const publish = await tenantPublishingTo(server.base, receiver, "embedded delivery bench")
    const latencies = await oneAtATimeLatencies(publish, receiver, options.events)
    const round = (n: number) => Math.round(n * 10) / 10
    return {
      events: options.events,
      p50Ms: round(percentile(latencies, 50)),
      p90Ms: round(percentile(latencies, 90)),
      p99Ms: round(percentile(latencies, 99)),
      maxMs: round(latencies.at(-1) ?? Number.NaN)
    }
  } finally {
    await server.stop()
    receiver.close()
  }
}
