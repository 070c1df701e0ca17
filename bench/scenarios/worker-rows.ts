/**
 * The rows of the worker throughput scenario (worker-throughput.ts): codex-api's worker and the peers a Node team would
 * use instead doing the same job (bench/peers/: build the body, sign it per Standard Webhooks, POST it with keep-alive):
 *
 *   codex-api     `npm run worker` (compiled) draining deliveries queued through the API (`DELIVERY_WORKER=false`):
 *                 DELIVERY_TENANT_CONCURRENCY=32 (one tenant may use the whole worker, as the issue measured), the
 *                 default (16, half of DELIVERY_CONCURRENCY), and two worker processes
 *   graphile      graphile-worker on PostgreSQL, the task INSERTing an attempt row or not, batching off (its default)
 *                 or on (localQueue, completeJobBatchDelay, failJobBatchDelay: see bench/peers/graphile-worker.ts)
 *   BullMQ        on Redis without persistence (its own redis-server, or REDIS_URL)
 *   bare loop     the same signed POSTs from memory, no queue, no database
 *
 * Every worker runs with the container's Node flags. Each builder sets up its peer's store once (only when one of its
 * rows is wanted) and leaves its tear-down in `cleanups`, so that a failure half-way still tidies what was set up.
 */
import { Queue } from "bullmq"
import { makeWorkerUtils } from "graphile-worker"
import { Redis } from "ioredis"
import pg from "pg"
import { cpuSeconds, deliveryBenchEnv, dropScratchDatabase, postJson, scratchDatabase, startServer } from "../lib.ts"
import type { WebhookMessage } from "../peers/webhooks.ts"
import { webhookMessages } from "../peers/webhooks.ts"
import type { BenchReceiver } from "./receiver.ts"
import { backendsCpu, type Drain, type RowDefinition, spawnNode, startRedis } from "./worker-drain.ts"
import type { WorkerThroughputOptions } from "./worker-throughput.ts"

/** What every row builder needs. */
export interface RowContext {
  /** The PostgreSQL server the scratch databases are made on. */
  readonly serverUrl: string
  readonly options: WorkerThroughputOptions
  readonly receiver: BenchReceiver
  /** Per drain: `events × endpoints`. */
  readonly deliveries: number
  /** Env of the peers' worker processes (bench/peers/). */
  readonly peerEnv: Record<string, string>
  /** Whether the row `key` is measured (`options.only`). */
  readonly wanted: (key: string) => boolean
  /** Run in reverse once the drains are done (or one failed). */
  readonly cleanups: Array<() => Promise<void>>
}

/**
 * codex-api: a tenant with `endpoints` endpoints at the receiver, through the API with its worker off; the API stays
 * up (idle) to queue each drain's events.
 */
export const codexRows = async (context: RowContext): Promise<ReadonlyArray<RowDefinition>> => {
  const { serverUrl, options, receiver, deliveries, wanted, cleanups } = context
  const { concurrency } = options
  if (!["codex", "codex-default", "codex-2"].some(wanted)) return []
  const databaseUrl = await scratchDatabase(serverUrl, "codex_bench_worker")
  const api = await startServer(
    "codex-api",
    options.apiScript,
    deliveryBenchEnv(options.nodeOptions, { DATABASE_URL: databaseUrl, DELIVERY_WORKER: "false" })
  )
  const db = new pg.Client({ connectionString: databaseUrl })
  await db.connect()
  cleanups.push(async () => {
    await db.end()
    await api.stop()
    await dropScratchDatabase(serverUrl, "codex_bench_worker")
  })
  const tenant = (await postJson(`${api.base}/admin/tenants`, { name: "worker bench" })) as {
    apiKey: { key: string }
  }
  const auth = { authorization: `Bearer ${tenant.apiKey.key}` }
  for (let n = 0; n < options.endpoints; n++) {
    await postJson(`${api.base}/v1/endpoints`, { url: `${receiver.url}?e=${n}` }, auth)
  }
  const queue = async () => {
    await db.query("TRUNCATE delivery_attempts, deliveries, events")
    for (let i = 0; i < options.events; i++) {
      await postJson(
        `${api.base}/v1/events`,
        { type: "order.created", data: { orderId: `o_${i}`, amount: 4200 } },
        auth
      )
    }
    await db.query("ANALYZE deliveries, events, endpoints")
    const { rows: counted } = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM deliveries WHERE status = 'pending'"
    )
    if (counted[0]?.n !== deliveries) throw new Error(`codex-api queued ${counted[0]?.n}, not ${deliveries}`)
  }
  const unfinished = async () => {
    const { rows: counted } = await db.query<{ done: number; attempts: number }>(
      `SELECT (SELECT count(*)::int FROM deliveries WHERE status = 'succeeded') AS done,
              (SELECT count(*)::int FROM delivery_attempts) AS attempts`
    )
    const done = counted[0]
    return done?.done === deliveries && done.attempts === deliveries
      ? undefined
      : `codex-api has recorded ${done?.done} deliveries and ${done?.attempts} attempts`
  }
  // Only the first single-process drain is profiled: one profile, of the worker as the issue measured it.
  let profiled = false
  const worker = (env: Record<string, string>, processes: number): Drain => ({
    queue,
    unfinished,
    storeCpu: () => backendsCpu(db, "codex_bench_worker"),
    cleanUp: async () => {},
    start: () =>
      Array.from({ length: processes }, () => {
        const profile = options.cpuProfileDir !== undefined && !profiled && processes === 1
        if (profile) profiled = true
        return spawnNode(
          options.workerScript,
          deliveryBenchEnv(options.nodeOptions, { DATABASE_URL: databaseUrl, ...env }),
          profile ? ["--cpu-prof", `--cpu-prof-dir=${options.cpuProfileDir}`] : []
        )
      })
  })
  const onePerTenant = { DELIVERY_CONCURRENCY: String(concurrency), DELIVERY_TENANT_CONCURRENCY: String(concurrency) }
  const variants = [
    ["codex", `codex-api \`npm run worker\`, DELIVERY_TENANT_CONCURRENCY=${concurrency}`, onePerTenant, 1],
    [
      "codex-default",
      `codex-api \`npm run worker\`, default tenant cap (${Math.ceil(concurrency / 2)})`,
      { DELIVERY_CONCURRENCY: String(concurrency) },
      1
    ],
    ["codex-2", `codex-api, 2 worker processes (${concurrency} each, tenant cap ${concurrency})`, onePerTenant, 2]
  ] as const
  return variants
    .filter(([key]) => wanted(key))
    .map(([key, name, env, processes]) => ({ key, name, drain: worker(env, processes) }))
}

/**
 * graphile-worker: its schema migrated and the attempt table created once; each drain queues its jobs in one
 * `addJobs` call.
 */
export const graphileRows = async (context: RowContext): Promise<ReadonlyArray<RowDefinition>> => {
  const { serverUrl, options, receiver, deliveries, peerEnv, wanted, cleanups } = context
  const variants = [
    ["graphile-attempt", true, "default"],
    ["graphile-attempt-batched", true, "batched"],
    ["graphile", false, "default"],
    ["graphile-batched", false, "batched"]
  ] as const
  if (!variants.some(([key]) => wanted(key))) return []
  const databaseUrl = await scratchDatabase(serverUrl, "codex_bench_graphile")
  const utils = await makeWorkerUtils({ connectionString: databaseUrl })
  cleanups.push(async () => {
    await utils.release()
    await dropScratchDatabase(serverUrl, "codex_bench_graphile")
  })
  await utils.migrate()
  await utils.withPgClient((client) =>
    client.query(`CREATE TABLE webhook_attempts (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      job_id text NOT NULL,
      attempt integer NOT NULL,
      started_at timestamptz NOT NULL,
      duration_ms integer NOT NULL,
      outcome text NOT NULL,
      status_code integer,
      error text,
      response_excerpt text
    );
    CREATE INDEX webhook_attempts_job_idx ON webhook_attempts (job_id, id)`)
  )
  return variants
    .filter(([key]) => wanted(key))
    .map(([key, attemptRows, batching]) => ({
      key,
      name:
        `graphile-worker 0.18, ${attemptRows ? "INSERTs an attempt row" : "no attempt row"}, ` +
        (batching === "default"
          ? "batching off (default)"
          : "batched (localQueue.size 500, completeJobBatchDelay 0, failJobBatchDelay 0)"),
      drain: {
        queue: async () => {
          await utils.withPgClient((client) => client.query("TRUNCATE webhook_attempts"))
          const messages = webhookMessages(receiver.url, options.events, options.endpoints)
          await utils.addJobs(messages.map((payload) => ({ identifier: "deliver", payload })))
          await utils.withPgClient((client) => client.query("ANALYZE graphile_worker._private_jobs"))
        },
        start: () => [
          spawnNode("bench/peers/graphile-worker.ts", {
            ...peerEnv,
            DATABASE_URL: databaseUrl,
            ATTEMPT_ROWS: String(attemptRows),
            BATCHING: batching
          })
        ],
        unfinished: async () => {
          const { rows: counted } = await utils.withPgClient((client) =>
            client.query<{ jobs: number; attempts: number }>(
              `SELECT (SELECT count(*)::int FROM graphile_worker._private_jobs) AS jobs,
                      (SELECT count(*)::int FROM webhook_attempts) AS attempts`
            )
          )
          const left = counted[0]
          return left?.jobs === 0 && left.attempts === (attemptRows ? deliveries : 0)
            ? undefined
            : `graphile-worker has ${left?.jobs} jobs left and ${left?.attempts} attempts recorded`
        },
        storeCpu: () => utils.withPgClient((client) => backendsCpu(client, "codex_bench_graphile")),
        cleanUp: async () => {}
      }
    }))
}

/** BullMQ: each drain on a queue of its own, queued with `addBulk` in chunks, obliterated afterwards. */
export const bullmqRows = async (context: RowContext): Promise<ReadonlyArray<RowDefinition>> => {
  const { options, receiver, deliveries, peerEnv, wanted, cleanups } = context
  if (!wanted("bullmq")) return []
  let redisUrl = options.redisUrl
  let redisPid: number | undefined
  if (redisUrl === undefined) {
    const redis = await startRedis()
    cleanups.push(redis.stop)
    redisUrl = redis.url
    redisPid = redis.pid
  }
  const url = redisUrl
  let drains = 0
  let queue: Queue<WebhookMessage> | undefined
  let connection: Redis | undefined
  const drain: Drain = {
    queue: async () => {
      connection = new Redis(url, { maxRetriesPerRequest: null })
      queue = new Queue<WebhookMessage>(`codex-bench-${process.pid}-${++drains}`, { connection })
      const messages = webhookMessages(receiver.url, options.events, options.endpoints)
      for (let i = 0; i < messages.length; i += 1000) {
        await queue.addBulk(messages.slice(i, i + 1000).map((data) => ({ name: "deliver", data })))
      }
    },
    start: () => [spawnNode("bench/peers/bullmq.ts", { ...peerEnv, REDIS_URL: url, QUEUE: queue?.name ?? "" })],
    unfinished: async () => {
      const counts = await queue?.getJobCounts("completed", "failed", "wait", "active")
      return counts?.completed === deliveries ? undefined : `BullMQ's jobs: ${JSON.stringify(counts)}`
    },
    storeCpu: async () => cpuSeconds(redisPid),
    cleanUp: async () => {
      await queue?.obliterate({ force: true })
      await queue?.close()
      connection?.disconnect()
    }
  }
  const store = options.redisUrl === undefined ? "redis-server without persistence" : "REDIS_URL"
  return [{ key: "bullmq", name: `BullMQ 6.7 on Redis (no attempt row; ${store})`, drain }]
}

/** The bare loop: the floor the queues are measured against (nothing to set up, nothing to check). */
export const loopRows = async (context: RowContext): Promise<ReadonlyArray<RowDefinition>> => {
  const { options, receiver, peerEnv, wanted } = context
  if (!wanted("loop")) return []
  const drain: Drain = {
    queue: async () => {},
    start: () => [
      spawnNode("bench/peers/webhook-loop.ts", {
        ...peerEnv,
        RECEIVER_URL: receiver.url,
        EVENTS: String(options.events),
        ENDPOINTS: String(options.endpoints)
      })
    ],
    unfinished: async () => undefined,
    storeCpu: async () => Number.NaN,
    cleanUp: async () => {}
  }
  return [{ key: "loop", name: "bare loop: the same signed POSTs, no queue, no database", drain }]
}
