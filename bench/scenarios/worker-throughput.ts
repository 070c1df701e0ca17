/**
 * Worker throughput (issue 17): a queue of `events × endpoints` deliveries (100 × 100 = 10,000) to a local receiver
 * answering 204, drained by one worker process at concurrency 32, beside the peers a Node team would use instead doing
 * the same job (bench/peers/: build the body, sign it per Standard Webhooks, POST it with keep-alive):
 *
 *   codex-api     `npm run worker` (compiled) draining deliveries queued through the API (`DELIVERY_WORKER=false`):
 *                 DELIVERY_TENANT_CONCURRENCY=32 (one tenant may use the whole worker, as the issue measured), the
 *                 default (16, half of DELIVERY_CONCURRENCY), and two worker processes
 *   graphile      graphile-worker on PostgreSQL, the task INSERTing an attempt row or not, batching off (its default)
 *                 or on (localQueue, completeJobBatchDelay, failJobBatchDelay: see bench/peers/graphile-worker.ts)
 *   BullMQ        on Redis without persistence (its own redis-server, or REDIS_URL)
 *   bare loop     the same signed POSTs from memory, no queue, no database
 *
 * Each run times one drain per row, the rows in rotation: from the worker process's spawn (its start-up included) to
 * the receiver's last delivery, plus the rate from the first delivery to the last, and the CPU time of the worker
 * process(es) at that moment (deliveries per CPU-second), and apart the store's (the PostgreSQL backends of the
 * drain's database, or the redis-server it started). Every worker runs with the container's Node flags. Each drain
 * checks its store afterwards: every delivery recorded as done.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { connect } from "node:net"
import { Queue } from "bullmq"
import { makeWorkerUtils } from "graphile-worker"
import { Redis } from "ioredis"
import pg from "pg"
import {
  cpuSeconds,
  deliveryBenchEnv,
  freePort,
  median,
  postJson,
  scratchDatabase,
  startServer,
  stopProcess,
  waitFor
} from "../lib.ts"
import type { WebhookMessage } from "../peers/webhooks.ts"
import { webhookMessages } from "../peers/webhooks.ts"
import { type BenchReceiver, startReceiver } from "./receiver.ts"

/** One drain. */
export interface DrainRun {
  /** Worker spawn → last delivery. */
  readonly seconds: number
  readonly perSecond: number
  /** Worker spawn → first delivery (start-up). */
  readonly firstDeliverySeconds: number
  /** First delivery → last delivery. */
  readonly steadyPerSecond: number
  /** CPU time of the worker process(es), user + system, at the last delivery. */
  readonly cpuSeconds: number
  readonly perCpuSecond: number
  /**
   * CPU time of the store's side over the same span: the PostgreSQL backends serving the drain's database, or the
   * redis-server this benchmark started (NaN for the bare loop, or a REDIS_URL Redis). Background processes
   * (WAL writer, checkpointer, autovacuum) are not in it.
   */
  readonly storeCpuSeconds: number
  /** Requests the receiver got twice (same `webhook-id` and endpoint). */
  readonly duplicates: number
}

export interface WorkerRow {
  readonly key: string
  readonly name: string
  readonly runs: ReadonlyArray<DrainRun>
}

export interface WorkerThroughputFigures {
  readonly deliveries: number
  readonly concurrency: number
  readonly rows: ReadonlyArray<WorkerRow>
}

export interface WorkerThroughputOptions {
  /** Node flags of the worker processes (the container's). */
  readonly nodeOptions: string
  /** codex-api's API and worker entry points (compiled: dist/src/main.js, dist/src/worker.js). */
  readonly apiScript: string
  readonly workerScript: string
  readonly events: number
  readonly endpoints: number
  readonly concurrency: number
  readonly runs: number
  /** Only these rows (keys), all when undefined. */
  readonly only?: ReadonlyArray<string>
  /** Redis for BullMQ; a redis-server of its own (no persistence) when undefined. */
  readonly redisUrl?: string
  /** Write a CPU profile of the first codex-api single-worker drain (tenant cap 32) here. */
  readonly cpuProfileDir?: string
  readonly log: (line: string) => void
}

interface Drain {
  /** Queues the backlog (before the clock starts). */
  readonly queue: () => Promise<void>
  /** Starts the worker process(es): the clock starts here. */
  readonly start: () => ReadonlyArray<ChildProcess>
  /**
   * After the last delivery, before the worker stops: what the store has not recorded yet (undefined: every delivery
   * done, as the drain should leave it). Asked again for a few seconds: the last completions commit after the sends.
   */
  readonly unfinished: () => Promise<string | undefined>
  /** CPU seconds the store's processes have used so far (see `DrainRun.storeCpuSeconds`). */
  readonly storeCpu: () => Promise<number>
  /** After the worker stopped. */
  readonly cleanUp: () => Promise<void>
}

interface RowDefinition {
  readonly key: string
  readonly name: string
  readonly drain: Drain
}

const spawnNode = (script: string, env: Record<string, string>, execArgv: ReadonlyArray<string> = []): ChildProcess =>
  spawn(process.execPath, [...execArgv, script], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "ignore", "inherit"]
  })

/** SIGTERM, then the exit (SIGKILL after 15 s). */
const stopChild = (child: ChildProcess): Promise<void> => stopProcess(child, 15_000)

/** Times one drain of `deliveries` deliveries. */
const timeDrain = async (receiver: BenchReceiver, deliveries: number, drain: Drain): Promise<DrainRun> => {
  await drain.queue()
  receiver.reset()
  const storeBefore = await drain.storeCpu()
  const started = performance.now()
  const children = drain.start()
  const failed = new Promise<never>((_, reject) => {
    for (const child of children) {
      child.once("exit", (code, signal) => reject(new Error(`a worker exited early (${code ?? signal})`)))
    }
  })
  let timeout: NodeJS.Timeout | undefined
  const timedOut = new Promise<never>((_, reject) => {
    timeout = setTimeout(
      () => reject(new Error(`not drained within 300 s (${receiver.tally().received} delivered)`)),
      300_000
    )
  })
  try {
    const last = await Promise.race([receiver.reached(deliveries), failed, timedOut])
    const cpu = children.reduce((sum, child) => sum + cpuSeconds(child.pid), 0)
    const storeCpu = (await drain.storeCpu()) - storeBefore
    const tally = receiver.tally()
    let left: string | undefined
    const finished = async () => {
      left = await drain.unfinished()
      return left === undefined
    }
    if (!(await waitFor(finished, 10_000))) {
      throw new Error(`drained, but 10 s after the last delivery ${left}`)
    }
    const seconds = (last - started) / 1000
    const round = (n: number, digits = 0) => Math.round(n * 10 ** digits) / 10 ** digits
    return {
      seconds: round(seconds, 2),
      perSecond: round(deliveries / seconds),
      firstDeliverySeconds: round((tally.firstAt - started) / 1000, 2),
      steadyPerSecond: round((deliveries - 1) / ((last - tally.firstAt) / 1000)),
      cpuSeconds: round(cpu, 2),
      perCpuSecond: round(deliveries / cpu),
      storeCpuSeconds: round(storeCpu, 2),
      duplicates: tally.repeated
    }
  } finally {
    clearTimeout(timeout)
    for (const child of children) child.removeAllListeners("exit")
    await Promise.all(children.map(stopChild))
    await drain.cleanUp()
  }
}

/** Whether something accepts connections on 127.0.0.1:`port`. */
const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, "127.0.0.1")
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

/** redis-server on a free port of 127.0.0.1, without persistence (no RDB snapshots, no AOF). */
const startRedis = async (): Promise<{
  readonly url: string
  readonly pid: number | undefined
  readonly stop: () => Promise<void>
}> => {
  const port = await freePort()
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    {
      stdio: "ignore"
    }
  )
  const started = await waitFor(async () => child.exitCode !== null || (await listening(port)), 10_000)
  if (!started || child.exitCode !== null) throw new Error("redis-server did not start")
  const url = `redis://127.0.0.1:${port}`
  return { url, pid: child.pid, stop: () => stopChild(child) }
}

export const measureWorkerThroughput = async (
  serverUrl: string,
  options: WorkerThroughputOptions
): Promise<WorkerThroughputFigures> => {
  const { log, concurrency } = options
  const deliveries = options.events * options.endpoints
  const wanted = (key: string) => options.only === undefined || options.only.includes(key)
  const receiver = await startReceiver()
  const cleanups: Array<() => Promise<void>> = [async () => receiver.close()]
  const rows: Array<RowDefinition> = []
  try {
    const peerEnv = { NODE_OPTIONS: options.nodeOptions, CONCURRENCY: String(concurrency) }

    // codex-api: a tenant with `endpoints` endpoints at the receiver, through the API with its worker off; the API
    // stays up (idle) to queue each drain's events.
    if (["codex", "codex-default", "codex-2"].some(wanted)) {
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
        await dropDatabase(serverUrl, "codex_bench_worker")
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
      const onePerTenant = {
        DELIVERY_CONCURRENCY: String(concurrency),
        DELIVERY_TENANT_CONCURRENCY: String(concurrency)
      }
      if (wanted("codex")) {
        rows.push({
          key: "codex",
          name: `codex-api \`npm run worker\`, DELIVERY_TENANT_CONCURRENCY=${concurrency}`,
          drain: worker(onePerTenant, 1)
        })
      }
      if (wanted("codex-default")) {
        rows.push({
          key: "codex-default",
          name: `codex-api \`npm run worker\`, default tenant cap (${Math.ceil(concurrency / 2)})`,
          drain: worker({ DELIVERY_CONCURRENCY: String(concurrency) }, 1)
        })
      }
      if (wanted("codex-2")) {
        rows.push({
          key: "codex-2",
          name: `codex-api, 2 worker processes (${concurrency} each, tenant cap ${concurrency})`,
          drain: worker(onePerTenant, 2)
        })
      }
    }

    // graphile-worker: its schema migrated and the attempt table created once; each drain queues its jobs in one
    // `addJobs` call.
    const graphileRows = [
      ["graphile-attempt", true, "default"],
      ["graphile-attempt-batched", true, "batched"],
      ["graphile", false, "default"],
      ["graphile-batched", false, "batched"]
    ] as const
    if (graphileRows.some(([key]) => wanted(key))) {
      const databaseUrl = await scratchDatabase(serverUrl, "codex_bench_graphile")
      const utils = await makeWorkerUtils({ connectionString: databaseUrl })
      cleanups.push(async () => {
        await utils.release()
        await dropDatabase(serverUrl, "codex_bench_graphile")
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
      for (const [key, attemptRows, batching] of graphileRows) {
        if (!wanted(key)) continue
        rows.push({
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
        })
      }
    }

    // BullMQ: each drain on a queue of its own, queued with `addBulk` in chunks, obliterated afterwards.
    if (wanted("bullmq")) {
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
      rows.push({
        key: "bullmq",
        name: `BullMQ 6.7 on Redis (no attempt row; ${options.redisUrl === undefined ? "redis-server without persistence" : "REDIS_URL"})`,
        drain: {
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
      })
    }

    if (wanted("loop")) {
      rows.push({
        key: "loop",
        name: "bare loop: the same signed POSTs, no queue, no database",
        drain: {
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
      })
    }

    const measured = new Map<string, Array<DrainRun>>(rows.map((row) => [row.key, []]))
    for (let run = 1; run <= options.runs; run++) {
      for (const row of rows) {
        const drained = await timeDrain(receiver, deliveries, row.drain)
        measured.get(row.key)?.push(drained)
        log(
          `run ${run}/${options.runs} ${row.name}: ${drained.perSecond}/s (${drained.seconds} s, first delivery after ` +
            `${drained.firstDeliverySeconds} s, then ${drained.steadyPerSecond}/s), ${drained.cpuSeconds} CPU s, ` +
            `${drained.perCpuSecond}/CPU s (store ${drained.storeCpuSeconds} CPU s), ${drained.duplicates} duplicates`
        )
      }
    }
    return {
      deliveries,
      concurrency,
      rows: rows.map((row) => ({ key: row.key, name: row.name, runs: measured.get(row.key) ?? [] }))
    }
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup()
  }
}

/**
 * CPU time of one PostgreSQL backend (one thread) so far, in seconds, to the nanosecond: `/proc/<pid>/schedstat`
 * (its first field), where `/proc/<pid>/stat` counts in 10 ms ticks and a drain's 34 backends use a few ticks each.
 */
const backendCpuSeconds = (pid: number): number => {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[0]) / 1e9
  } catch {
    return cpuSeconds(pid)
  }
}

/** CPU seconds used so far by the PostgreSQL backends connected to `database` (this server runs on this host). */
const backendsCpu = async (client: pg.ClientBase, database: string): Promise<number> => {
  const { rows } = await client.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = $1", [
    database
  ])
  return rows.reduce((sum, row) => sum + (backendCpuSeconds(row.pid) || 0), 0)
}

const dropDatabase = async (serverUrl: string, name: string) => {
  const admin = new pg.Client({ connectionString: serverUrl })
  await admin.connect()
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  } finally {
    await admin.end()
  }
}

/** `min – max (median m)` of one figure over the runs. */
export const spread = (
  values: ReadonlyArray<number>,
  format: (n: number) => string = (n) => n.toLocaleString("en-US")
) => {
  const sorted = [...values].sort((a, b) => a - b)
  if (sorted.length === 0) return "–"
  if (sorted.length === 1) return format(sorted[0] ?? Number.NaN)
  return `${format(sorted[0] ?? Number.NaN)} – ${format(sorted.at(-1) ?? Number.NaN)} (median ${format(median(sorted))})`
}

/** The median store CPU time per delivery, in µs ("–" without one). */
const storePerDelivery = (seconds: ReadonlyArray<number>, deliveries: number): string => {
  const known = seconds.filter((n) => Number.isFinite(n))
  return known.length === 0 ? "–" : `${Math.round((median(known) * 1e6) / deliveries)} µs`
}

/** The markdown table of the figures. */
export const workerThroughputTable = (figures: WorkerThroughputFigures): string => {
  const lines = [
    `| worker (${figures.deliveries.toLocaleString("en-US")} deliveries, concurrency ${figures.concurrency}) | deliveries/s, spawn → last delivery | first delivery after | deliveries/s, first → last | deliveries per CPU-second | store CPU per delivery | duplicates |`,
    "|---|---|---|---|---|---|---|"
  ]
  for (const row of figures.rows) {
    const of = (pick: (run: DrainRun) => number) => row.runs.map(pick)
    lines.push(
      `| ${row.name} | ${spread(of((r) => r.perSecond))} | ${spread(
        of((r) => r.firstDeliverySeconds),
        (n) => `${n} s`
      )} | ${spread(of((r) => r.steadyPerSecond))} | ${spread(of((r) => r.perCpuSecond))} | ${storePerDelivery(
        of((r) => r.storeCpuSeconds),
        figures.deliveries
      )} | ${of((r) => r.duplicates).reduce((a, b) => a + b, 0)} |`
    )
  }
  return lines.join("\n")
}
