/**
 * Worker start → first delivery (issue 17, "Start-up and memory"): the compiled worker (`node dist/src/worker.js`, as
 * the container runs it) spawned on a database where one delivery is due, to a local receiver answering 204; from the
 * spawn to the receiver having the request. Where the time goes comes from the worker's own log lines (their `time`,
 * against the spawn's wall clock) and from processes that do nothing else: one printing `performance.now()` at once
 * (Node's own start) and one printing it after importing the worker's modules (module loading).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { dirname } from "node:path"
import { createInterface } from "node:readline"
import pg from "pg"
import {
  benchEncryptionKeys,
  cpuSeconds,
  deliveryBenchEnv,
  dropScratchDatabase,
  type MemoryFootprint,
  median,
  postJson,
  scratchDatabase,
  settledFootprint,
  startServer,
  stopProcess,
  waitFor
} from "../lib.ts"
import { startReceiver } from "./receiver.ts"

/** The worker's log lines that mark its start-up, in order. */
export const workerMilestones = [
  "database schema is up to date",
  "secrets at rest: re-encryption sweep done",
  "delivery worker started"
] as const

export interface WorkerStartRun {
  /** Spawn → the receiver has the first delivery. */
  readonly firstDeliveryMs: number
  /**
   * The worker's CPU time (user + system, all its threads) when the receiver had the delivery, in ms: what the
   * start-up costs, less dependent than the wall clock on what else the machine runs.
   */
  readonly cpuMs: number
  /** Spawn → each milestone line's `time` (ms; NaN when the line did not come). */
  readonly milestonesMs: Readonly<Record<string, number>>
  /** The worker's memory once the delivery is done and it is idle. */
  readonly idle: MemoryFootprint
}

export interface WorkerStartFigures {
  readonly runs: ReadonlyArray<WorkerStartRun>
  /** Process start → the first line of user code (Node's own start-up), median. */
  readonly nodeMs: number
  /** Process start → the worker's modules loaded and evaluated, in a process that only imports them, median. */
  readonly modulesMs: number
  /** How many modules that process loads. */
  readonly moduleCount: number
}

/** The worker script's static imports (`import ... from "..."` lines of the compiled file), as one module's text. */
const importsOf = (script: string): string =>
  readFileSync(script, "utf8")
    .split("\n")
    .filter((line) => /^import .* from "[^"]+";?$/.test(line))
    .join("\n")

/**
 * `performance.now()` printed by `node <args>` (ms since the process's time origin, its start), the code printing it
 * last in `code`.
 */
const printedNow = (code: string, cwd: string, nodeOptions: string): number =>
  Number(
    execFileSync(process.execPath, ["--input-type=module", "-e", `${code}\nconsole.log(performance.now())`], {
      cwd,
      encoding: "utf8",
      env: { PATH: process.env.PATH ?? "", NODE_OPTIONS: nodeOptions }
    }).trim()
  )

/** Reads the JSON log lines of `child`'s stdout, each with its `time` as epoch ms. */
const logLines = (child: ChildProcess) => {
  const lines: Array<{ readonly message: string; readonly at: number }> = []
  if (child.stdout !== null) {
    createInterface({ input: child.stdout }).on("line", (line) => {
      try {
        const entry = JSON.parse(line) as { readonly time?: string; readonly message?: string }
        if (entry.time !== undefined && entry.message !== undefined) {
          lines.push({ message: entry.message, at: Date.parse(entry.time) })
        }
      } catch {
        // not a log line
      }
    })
  }
  return lines
}

export const measureWorkerStartup = async (
  serverUrl: string,
  options: {
    /** The container's Node flags. */
    readonly nodeOptions: string
    readonly apiScript: string
    readonly workerScript: string
    readonly runs: number
    readonly log: (line: string) => void
  }
): Promise<WorkerStartFigures> => {
  const { nodeOptions, log } = options
  const name = "codex_bench_worker_start"
  const databaseUrl = await scratchDatabase(serverUrl, name)
  const receiver = await startReceiver()
  const db = new pg.Client({ connectionString: databaseUrl })
  try {
    // The API (worker off) migrates the database and queues one delivery: a tenant, an endpoint at the receiver, an
    // event. It is stopped before the worker starts.
    const api = await startServer(
      "codex-api",
      options.apiScript,
      // The worker's key: the endpoint's secret is sealed under it.
      deliveryBenchEnv(nodeOptions, {
        DATABASE_URL: databaseUrl,
        DELIVERY_WORKER: "false",
        ENCRYPTION_KEYS: benchEncryptionKeys
      })
    )
    try {
      const tenant = (await postJson(`${api.base}/admin/tenants`, { name: "worker start-up" })) as {
        apiKey: { key: string }
      }
      const auth = { authorization: `Bearer ${tenant.apiKey.key}` }
      await postJson(`${api.base}/v1/endpoints`, { url: receiver.url }, auth)
      await postJson(`${api.base}/v1/events`, { type: "order.created", data: { orderId: "o_1" } }, auth)
    } finally {
      await api.stop()
    }
    await db.connect()

    const runs: Array<WorkerStartRun> = []
    for (let run = 1; run <= options.runs; run++) {
      // The one delivery due again, as if never attempted.
      await db.query("DELETE FROM delivery_attempts")
      await db.query(
        `UPDATE deliveries SET status = 'pending', attempt_count = 0, next_attempt_at = now(), locked_until = NULL,
           locked_by = NULL, delivered_at = NULL, last_status = NULL, last_error = NULL`
      )
      receiver.reset()
      const spawnedAt = Date.now()
      const started = performance.now()
      const child = spawn(process.execPath, [options.workerScript], {
        env: {
          PATH: process.env.PATH ?? "",
          // Production's work at start-up: the re-encryption sweep runs (it is skipped under the development key).
          ...deliveryBenchEnv(nodeOptions, { DATABASE_URL: databaseUrl, ENCRYPTION_KEYS: benchEncryptionKeys })
        },
        stdio: ["ignore", "pipe", "inherit"]
      })
      const lines = logLines(child)
      const exited = new Promise<never>((_, reject) =>
        child.once("exit", (code, signal) => reject(new Error(`the worker exited early (${code ?? signal})`)))
      )
      try {
        let timer: NodeJS.Timeout | undefined
        const timedOut = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("no delivery within 60 s")), 60_000)
        })
        const deliveredAt = await Promise.race([receiver.reached(1), exited, timedOut]).finally(() =>
          clearTimeout(timer)
        )
        const cpuMs = Math.round(cpuSeconds(child.pid) * 1000)
        // Idle: the delivery recorded, the start-up garbage collected.
        const recorded = async () =>
          (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM delivery_attempts")).rows[0]?.n === 1
        if (!(await waitFor(recorded, 10_000))) throw new Error("the delivery was not recorded within 10 s")
        const milestonesMs: Record<string, number> = {}
        for (const milestone of workerMilestones) {
          const line = lines.find((entry) => entry.message === milestone)
          milestonesMs[milestone] = line === undefined ? Number.NaN : line.at - spawnedAt
        }
        const idle = await settledFootprint(child.pid, { minimumMs: 0, timeoutMs: 10_000 })
        runs.push({ firstDeliveryMs: Math.round(deliveredAt - started), cpuMs, milestonesMs, idle })
        log(
          `worker run ${run}/${options.runs}: first delivery after ${Math.round(deliveredAt - started)} ms, ${cpuMs} ms of CPU (` +
            workerMilestones.map((m) => `${m} ${milestonesMs[m]} ms`).join(", ") +
            `), RSS ${idle.rssMb} MB`
        )
      } finally {
        child.removeAllListeners("exit")
        await stopProcess(child, 10_000)
      }
    }

    // Node alone, and the worker's module graph alone (its imports evaluated, nothing run), the same number of times.
    const cwd = dirname(options.workerScript)
    const imports = importsOf(options.workerScript)
    const nodeMs: Array<number> = []
    const modulesMs: Array<number> = []
    for (let run = 0; run < Math.max(5, options.runs); run++) {
      nodeMs.push(printedNow("", cwd, nodeOptions))
      modulesMs.push(printedNow(imports, cwd, nodeOptions))
    }
    // The same imports with a load hook counting every module (Node's built-ins included) and printing the count at exit.
    const counter = `import { registerHooks } from "node:module"
let modules = 0
registerHooks({ load: (url, context, next) => { modules++; return next(url, context) } })
process.on("exit", () => console.log(modules))`
    const moduleCount = Number(
      execFileSync(
        process.execPath,
        ["--import", `data:text/javascript,${encodeURIComponent(counter)}`, "--input-type=module", "-e", imports],
        { cwd, encoding: "utf8" }
      ).trim()
    )
    return { runs, nodeMs: Math.round(median(nodeMs)), modulesMs: Math.round(median(modulesMs)), moduleCount }
  } finally {
    await db.end().catch(() => undefined)
    receiver.close()
    await dropScratchDatabase(serverUrl, name)
  }
}
