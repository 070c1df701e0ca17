/**
 * What every peer of the worker benchmark (graphile-worker, BullMQ, the bare loop) does per delivery, the job
 * codex-api's worker does: build the Standard Webhooks body `{ type, timestamp, data }`, sign it as codex-api does
 * (src/domain/WebhookSignature.ts: HMAC-SHA256 of `${id}.${timestamp}.${body}`), POST it with keep-alive (undici, the
 * client codex-api's worker uses, one pool per origin), read the answer, and fail on a non-2xx status (the queue
 * retries it). Outbound to 127.0.0.1 only: the benchmark's receiver.
 */
import { randomBytes, randomUUID } from "node:crypto"
import { Agent, request } from "undici"
import { webhookHeaders } from "../../src/domain/WebhookSignature.ts"

/** One delivery as a job carries it: the event, and the endpoint's URL and signing secret. */
export interface WebhookMessage {
  /** The event id: `webhook-id`, the same for every endpoint of the event (as codex-api sends it). */
  readonly id: string
  readonly type: string
  /** ISO 8601, the event's occurrence. */
  readonly timestamp: string
  readonly data: unknown
  readonly url: string
  /** `whsec_` + base64 of 32 bytes, as codex-api's endpoints get. */
  readonly secret: string
}

/** `events` events × `endpoints` endpoints at `receiverUrl` (endpoint n at `?e=n`), event by event. */
export const webhookMessages = (receiverUrl: string, events: number, endpoints: number): Array<WebhookMessage> => {
  const secrets = Array.from({ length: endpoints }, () => `whsec_${randomBytes(32).toString("base64")}`)
  const messages: Array<WebhookMessage> = []
  for (let i = 0; i < events; i++) {
    const event = {
      id: `evt_${randomUUID()}`,
      type: "order.created",
      timestamp: new Date().toISOString(),
      data: { orderId: `o_${i}`, amount: 4200 }
    }
    for (let n = 0; n < endpoints; n++) {
      messages.push({ ...event, url: `${receiverUrl}?e=${n}`, secret: secrets[n] ?? "" })
    }
  }
  return messages
}

// codex-api's DELIVERY_TIMEOUT default (15 s) for headers and body; keep-alive as undici does by default.
const dispatcher = new Agent({ headersTimeout: 15_000, bodyTimeout: 15_000 })

/** What one POST came to, for an attempt row. */
export interface Sent {
  readonly startedAt: Date
  readonly durationMs: number
  readonly status: number
  /** The first 4 KiB of the answer (codex-api keeps as much). */
  readonly excerpt: string
}

/** Builds, signs and POSTs one delivery; throws on a non-2xx status. */
export const sendWebhook = async (message: WebhookMessage): Promise<Sent> => {
  const startedAt = new Date()
  const started = performance.now()
  const body = `{"type":${JSON.stringify(message.type)},"timestamp":"${message.timestamp}","data":${JSON.stringify(message.data)}}`
  const response = await request(message.url, {
    method: "POST",
    dispatcher,
    headers: {
      ...webhookHeaders([message.secret], message.id, Date.now() / 1000, body),
      "content-type": "application/json",
      "user-agent": "codex-bench-peer"
    },
    body
  })
  const excerpt = (await response.body.text()).slice(0, 4096)
  if (response.statusCode < 200 || response.statusCode >= 300) {
    throw new Error(`${message.url} answered ${response.statusCode}`)
  }
  return {
    startedAt,
    durationMs: Math.round(performance.now() - started),
    status: response.statusCode,
    excerpt
  }
}

/** Keeps the process (whose work is done) alive until the benchmark has read its CPU time and sends SIGTERM. */
export const exitOnSigterm = (stop: () => Promise<void> = async () => {}) => {
  process.once("SIGTERM", () => {
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error)
        process.exit(1)
      }
    )
  })
}
