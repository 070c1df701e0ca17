/**
 * The worker benchmark's ceiling: the same signed POSTs as every worker (webhooks.ts), from an in-memory list, at
 * most CONCURRENCY at once, with no queue and no database. Then idles until SIGTERM (the benchmark reads its CPU
 * time first).
 *
 * Environment: RECEIVER_URL, EVENTS, ENDPOINTS, CONCURRENCY.
 */
import { exitOnSigterm, sendWebhook, webhookMessages } from "./webhooks.ts"

const receiverUrl = process.env.RECEIVER_URL
if (receiverUrl === undefined) throw new Error("set RECEIVER_URL")
const messages = webhookMessages(receiverUrl, Number(process.env.EVENTS ?? 100), Number(process.env.ENDPOINTS ?? 100))
const concurrency = Number(process.env.CONCURRENCY ?? 32)

exitOnSigterm()
let next = 0
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    for (let message = messages[next++]; message !== undefined; message = messages[next++]) {
      await sendWebhook(message)
    }
  })
)
setInterval(() => {}, 60_000)
