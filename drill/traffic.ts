/**
 * The drill's traffic: a bounded publisher that behaves like a careful client (a unique Idempotency-Key per event,
 * retried with the same key on 409, 5xx and network errors) and records what it saw, and webhook receivers that
 * verify every request with the official `standardwebhooks` library and record every delivery.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http"
import { createServer } from "node:https"
import type { AddressInfo } from "node:net"
import { Webhook } from "standardwebhooks"
import { sleep } from "./infra.ts"

export interface Publishing {
  /** Attempts sent, retries included. */
  attempts: number
  /** Every status of every attempt (0 = network error or client timeout). */
  readonly statuses: Record<string, number>
  /** Requests that hit the client timeout (10 s): a hang. */
  hangs: number
  /** The X-Request-Id of each hung request and when it was sent, to find it in the replicas' logs. */
  readonly hung: Array<string>
  /** Event ids answered 202. */
  readonly accepted: Set<string>
  /** Events given up on after every retry (final failures). */
  failed: number
  /** Wall-clock time of each acceptance, for delivery latency. */
  readonly acceptedAt: Map<string, number>
}

export const newPublishing = (): Publishing => ({
  attempts: 0,
  statuses: {},
  hangs: 0,
  hung: [],
  accepted: new Set(),
  failed: 0,
  acceptedAt: new Map()
})

const retryable = (status: number) => status === 0 || status === 409 || status >= 500

/** Publishes one event through `base` with its own key, retrying like a careful client (at most ~20 s). */
export const publishOne = async (publishing: Publishing, base: string, apiKey: string, key: string, data: unknown) => {
  for (let attempt = 0; attempt < 12; attempt++) {
    publishing.attempts++
    let status = 0
    let body = ""
    const requestId = `${key}.${attempt}`
    const sentAt = new Date().toISOString()
    try {
      const response = await fetch(`${base}/v1/events`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${apiKey}`,
          "content-type": "application/json",
          "idempotency-key": key,
          "x-request-id": requestId
        },
        body: JSON.stringify({ type: "drill.event", data }),
        signal: AbortSignal.timeout(10_000)
      })
      status = response.status
      body = await response.text()
    } catch (error) {
      if (error instanceof Error && error.name === "TimeoutError") {
        publishing.hangs++
        publishing.hung.push(`${requestId} sent ${sentAt}`)
      }
    }
    publishing.statuses[status] = (publishing.statuses[status] ?? 0) + 1
    if (status === 202) {
      const id = (JSON.parse(body) as { event: { id: string } }).event.id
      if (!publishing.accepted.has(id)) publishing.acceptedAt.set(id, performance.now())
      publishing.accepted.add(id)
      return
    }
    if (!retryable(status)) break
    await sleep(Math.min(2000, 100 * 2 ** attempt))
  }
  publishing.failed++
}

/** Publishes with `concurrency` workers until `stop()` says so or `max` events were published. */
export const publishUntil = async (
  publishing: Publishing,
  options: {
    readonly base: string
    readonly apiKey: string
    readonly prefix: string
    readonly concurrency: number
    readonly max: number
    readonly stop: () => boolean
  }
) => {
  let next = 0
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (!options.stop() && next < options.max) {
        const i = next++
        await publishOne(publishing, options.base, options.apiKey, `${options.prefix}-${i}`, { i })
      }
    })
  )
}

export interface Receiver {
  readonly url: string
  /** Verified deliveries: webhook-id → arrival times. */
  readonly received: Map<string, Array<number>>
  /** Requests whose signature did not verify. */
  invalid: number
  secret: string | undefined
  close: () => void
}

/**
 * A receiver answering with `respond` (default 204 at once). Requests are verified with `secret` once it is set (the
 * endpoint's secret is known only after the endpoint is created).
 */
export const startReceiver = async (
  tls: { readonly cert: string; readonly key: string },
  respond: (index: number) => Promise<number> | number = () => 204
): Promise<Receiver> => {
  let count = 0
  const receiver: Receiver = {
    url: "",
    received: new Map(),
    invalid: 0,
    secret: undefined,
    close: () => undefined
  }
  const server: Server = createServer(tls, (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => {
      const index = count++
      const body = Buffer.concat(chunks).toString("utf8")
      const id = String(req.headers["webhook-id"])
      const headers = {
        "webhook-id": id,
        "webhook-timestamp": String(req.headers["webhook-timestamp"]),
        "webhook-signature": String(req.headers["webhook-signature"])
      }
      try {
        if (receiver.secret !== undefined) new Webhook(receiver.secret).verify(body, headers)
      } catch {
        receiver.invalid++
      }
      Promise.resolve(respond(index)).then(
        (status) => {
          if (status >= 200 && status < 300) {
            const times = receiver.received.get(id) ?? []
            times.push(performance.now())
            receiver.received.set(id, times)
          }
          if (!res.destroyed) res.writeHead(status).end()
        },
        () => res.destroy()
      )
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return Object.assign(receiver, {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    close: () => {
      server.closeAllConnections()
      server.close()
    }
  })
}

/** Deliveries of `ids` that arrived (2xx answered), and the duplicates among all arrivals. */
export const deliveryCounts = (receiver: Receiver, ids: ReadonlySet<string>) => {
  let delivered = 0
  let duplicates = 0
  for (const id of ids) {
    const times = receiver.received.get(id)
    if (times !== undefined) {
      delivered++
      duplicates += times.length - 1
    }
  }
  return { delivered, duplicates }
}
