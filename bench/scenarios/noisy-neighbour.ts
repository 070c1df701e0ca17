/**
 * A noisy neighbour (issue 17): one tenant's 64 endpoints hang (a receiver that accepts every request and never
 * answers; DELIVERY_TIMEOUT 60 s, so nothing frees their slots), 192 deliveries of theirs due at once; meanwhile a quiet
 * tenant publishes events one at a time to its one endpoint (answering 204 at once): publish request sent → receiver
 * has the body (p50, p90, max). One codex-api process on PostgreSQL with its worker, production delivery settings.
 */
import { createServer, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { deliveryBenchEnv, percentile, postJson, startServer, waitFor } from "../lib.ts"
import { startReceiver } from "./receiver.ts"

export interface NoisyNeighbourFigures {
  readonly noisyEndpoints: number
  readonly noisyDeliveries: number
  /** Sends of the noisy tenant hanging when the quiet tenant started publishing. */
  readonly noisyInFlight: number
  readonly quietEvents: number
  readonly p50Ms: number
  readonly p90Ms: number
  readonly maxMs: number
}

/** Accepts every request and never answers; counts them. */
const startHangingReceiver = async () => {
  const held: Array<ServerResponse> = []
  const server = createServer((req, res) => {
    req.resume()
    held.push(res)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    held,
    close: () => {
      server.closeAllConnections()
      server.close()
    }
  }
}

export const measureNoisyNeighbour = async (
  databaseUrl: string,
  script: string,
  options: { readonly nodeOptions: string; readonly quietEvents: number; readonly env?: Record<string, string> }
): Promise<NoisyNeighbourFigures> => {
  const noisyEndpoints = 64
  const noisyEvents = 3
  const hanging = await startHangingReceiver()
  const receiver = await startReceiver()
  const server = await startServer(
    "codex-api",
    script,
    deliveryBenchEnv(options.nodeOptions, {
      LOG_LEVEL: "warn",
      SHUTDOWN_TIMEOUT: "2 seconds",
      DELIVERY_TIMEOUT: "60 seconds",
      DATABASE_URL: databaseUrl,
      ...options.env
    })
  )
  try {
    const tenant = async (name: string) => {
      const created = (await postJson(`${server.base}/admin/tenants`, { name })) as { apiKey: { key: string } }
      return { authorization: `Bearer ${created.apiKey.key}` }
    }
    const noisy = await tenant("noisy neighbour")
    for (let n = 0; n < noisyEndpoints; n++) {
      await postJson(`${server.base}/v1/endpoints`, { url: `${hanging.url}?n=${n}` }, noisy)
    }
    for (let n = 0; n < noisyEvents; n++) {
      await postJson(`${server.base}/v1/events`, { type: "noisy.event", data: { n } }, noisy)
    }
    // The noisy tenant holds what it may of the worker before the quiet one publishes anything.
    await waitFor(() => hanging.held.length >= 8, 10_000, 20)
    const noisyInFlight = hanging.held.length

    const quiet = await tenant("quiet neighbour")
    await postJson(`${server.base}/v1/endpoints`, { url: receiver.url }, quiet)
    const latencies: Array<number> = []
    for (let i = 0; i < options.quietEvents; i++) {
      const before = performance.now()
      const published = (await postJson(`${server.base}/v1/events`, { type: "quiet.event", data: { i } }, quiet)) as {
        event: { id: string }
      }
      const arrived = await Promise.race([
        receiver.arrived(published.event.id),
        new Promise<number>((resolve) => setTimeout(() => resolve(Number.POSITIVE_INFINITY), 30_000))
      ])
      latencies.push(arrived - before)
      if (!Number.isFinite(arrived)) break
    }
    latencies.sort((a, b) => a - b)
    const round = (n: number) => Math.round(n * 10) / 10
    return {
      noisyEndpoints,
      noisyDeliveries: noisyEndpoints * noisyEvents,
      noisyInFlight,
      quietEvents: latencies.length,
      p50Ms: round(percentile(latencies, 50)),
      p90Ms: round(percentile(latencies, 90)),
      maxMs: round(latencies.at(-1) ?? Number.NaN)
    }
  } finally {
    hanging.close()
    receiver.close()
    await server.stop()
  }
}
