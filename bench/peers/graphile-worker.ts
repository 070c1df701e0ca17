/**
 * graphile-worker doing the delivery job of codex-api's worker (see webhooks.ts): a `deliver` task that builds, signs
 * and POSTs the job's webhook and, with ATTEMPT_ROWS=true, INSERTs an attempt row (`webhook_attempts`, the columns of
 * codex-api's `delivery_attempts`) through graphile's own pool, as a task recording its attempts would. The benchmark
 * queues the jobs (`addJobs`) before it starts this process.
 *
 * graphile-worker 0.18's batching options (all off by default; https://worker.graphile.org/docs/performance):
 *   - `localQueue.size`: the pool fetches and locks this many jobs at once and hands them to its workers locally
 *     instead of one `get_job` round trip per job (default -1, off; `ttl` and `refetchDelay` tune it);
 *   - `completeJobBatchDelay` / `failJobBatchDelay`: wait this many ms for other completions (failures) and complete
 *     them in one statement instead of one each (default -1, off).
 * BATCHING=batched sets the configuration of graphile's own performance page (`localQueue: { size: 500 }`,
 * `completeJobBatchDelay: 0`, `failJobBatchDelay: 0`); BATCHING=default leaves them off. (`useNodeTime`, also a
 * performance-related option, stays at its default `false`: PostgreSQL's clock.) Either way `concurrentJobs` is
 * CONCURRENCY and `maxPoolSize` CONCURRENCY + 2, the pool size graphile's documentation recommends.
 *
 * Environment: DATABASE_URL, CONCURRENCY, ATTEMPT_ROWS (true|false), BATCHING (default|batched).
 */
import { Logger, run, type Task } from "graphile-worker"
import { exitOnSigterm, sendWebhook, type WebhookMessage } from "./webhooks.ts"

const connectionString = process.env.DATABASE_URL
if (connectionString === undefined) throw new Error("set DATABASE_URL")
const concurrency = Number(process.env.CONCURRENCY ?? 32)
const attemptRows = process.env.ATTEMPT_ROWS === "true"
const batched = process.env.BATCHING === "batched"

const deliver: Task = async (payload, helpers) => {
  const sent = await sendWebhook(payload as WebhookMessage)
  if (attemptRows) {
    await helpers.query(
      `INSERT INTO webhook_attempts (job_id, attempt, started_at, duration_ms, outcome, status_code, response_excerpt)
       VALUES ($1, $2, $3, $4, 'succeeded', $5, $6)`,
      [helpers.job.id, helpers.job.attempts, sent.startedAt, sent.durationMs, sent.status, sent.excerpt]
    )
  }
}

// Warnings and errors only: graphile logs every completed job at `info` (codex-api logs its attempts at `debug`).
const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") console.error(`[graphile-worker] ${message}`)
})

const runner = await run({
  taskList: { deliver },
  crontab: "",
  noHandleSignals: true,
  logger,
  preset: {
    worker: {
      connectionString,
      concurrentJobs: concurrency,
      maxPoolSize: concurrency + 2,
      ...(batched ? { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } : {})
    }
  }
})
exitOnSigterm(() => runner.stop())
