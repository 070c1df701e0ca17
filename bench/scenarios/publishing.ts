/** What the delivery scenarios do the same way: a tenant with one endpoint at the receiver, and timed publishes. */
import { postJson } from "../lib.ts"
import type { BenchReceiver } from "./receiver.ts"

/** A new tenant (admin API) with one endpoint at `receiver`; returns a publish that answers the event's id. */
export const tenantPublishingTo = async (base: string, receiver: BenchReceiver, name: string) => {
  const tenant = (await postJson(`${base}/admin/tenants`, { name })) as { apiKey: { key: string } }
  const auth = { authorization: `Bearer ${tenant.apiKey.key}` }
  await postJson(`${base}/v1/endpoints`, { url: receiver.url }, auth)
  return async (i: number): Promise<string> =>
    ((await postJson(`${base}/v1/events`, { type: "bench.event", data: { i } }, auth)) as { event: { id: string } })
      .event.id
}

/**
 * Publish → delivery of `events` events published one at a time (after 20 for warm-up), sorted: publish request
 * sent → receiver has the body, in ms.
 */
export const oneAtATimeLatencies = async (
  publish: (i: number) => Promise<string>,
  receiver: BenchReceiver,
  events: number
): Promise<ReadonlyArray<number>> => {
  for (let i = 0; i < 20; i++) await receiver.arrived(await publish(i))
  const latencies: Array<number> = []
  for (let i = 0; i < events; i++) {
    const before = performance.now()
    latencies.push((await receiver.arrived(await publish(i))) - before)
  }
  return latencies.sort((a, b) => a - b)
}
