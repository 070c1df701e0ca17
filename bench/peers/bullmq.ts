/**
 * BullMQ doing the delivery job of codex-api's worker (see webhooks.ts) on Redis: a worker with concurrency
 * CONCURRENCY whose processor builds, signs and POSTs the job's webhook (no attempt row: the completed job stays in
 * Redis, BullMQ's default). The benchmark queues the jobs (`addBulk`) before it starts this process. ioredis is the
 * connection (BullMQ's usual driver, `maxRetriesPerRequest: null` as BullMQ requires for workers).
 *
 * Environment: REDIS_URL, QUEUE, CONCURRENCY.
 */
import { Worker } from "bullmq"
import { Redis } from "ioredis"
import { exitOnSigterm, sendWebhook, type WebhookMessage } from "./webhooks.ts"

const redisUrl = process.env.REDIS_URL
const queue = process.env.QUEUE
if (redisUrl === undefined || queue === undefined) throw new Error("set REDIS_URL and QUEUE")

const worker = new Worker<WebhookMessage>(
  queue,
  async (job) => {
    await sendWebhook(job.data)
  },
  {
    connection: new Redis(redisUrl, { maxRetriesPerRequest: null }),
    concurrency: Number(process.env.CONCURRENCY ?? 32)
  }
)
worker.on("error", (error) => console.error(`[bullmq] ${error.message}`))
exitOnSigterm(() => worker.close())
