/**
 * Start-up and memory (issue 17). Medians of a few runs (BENCH_RUNS, 3) each:
 *
 * 1. `npm start` (the node flags of package.json's `start` script, the TypeScript sources): time to ready (first
 *    `GET /healthz` = 200, from spawn) and idle RSS, for the embedded database (in memory, on disk first boot, on
 *    disk warm boot) and a real PostgreSQL. Idle: at least 10 s after ready, once the RSS has settled (see
 *    `settledFootprint`: start-up garbage collected, background compilation done).
 * 2. Where the embedded database's memory goes: those runs' RSS by kind (PGlite's WebAssembly memory, the rest of the
 *    anonymous memory, file-backed pages) and their peak, beside the warm boot without the `start` script's flags.
 * 3. Worker start → first delivery: `node dist/src/worker.js` (compiled, with the container's NODE_OPTIONS) on a
 *    scratch database where one delivery is due, to a local receiver; where the time goes (scenarios/worker-startup.ts).
 *    Builds codex-api first.
 *
 *   npm run bench:startup
 *
 * Writes bench/results/startup.{json,md}. BENCH_DATABASE_URL names the PostgreSQL database of part 1; without it,
 * part 1 creates and drops its own, codex_bench_startup, on the local server (127.0.0.1:5432, user postgres); part 3
 * creates and drops its own database, codex_bench_worker_start, on the same server.
 */
import { execFileSync, spawn } from "node:child_process"
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import {
  benchEncryptionKeys,
  containerNodeOptions,
  dropScratchDatabase,
  freePort,
  type MemoryFootprint,
  median,
  scratchDatabase,
  settledFootprint
} from "./lib.ts"
import { measureWorkerStartup, type WorkerStartFigures, workerMilestones } from "./scenarios/worker-startup.ts"

const runs = Number(process.env.BENCH_RUNS ?? 3)
// A database of the benchmark's own (made here unless BENCH_DATABASE_URL names one): the app migrates it at startup.
const localServer = "postgres://postgres@127.0.0.1:5432/postgres"
const ownDatabase = "codex_bench_startup"
const databaseUrl = process.env.BENCH_DATABASE_URL ?? (await scratchDatabase(localServer, ownDatabase))
const log = (line: string) => console.error(`[bench:startup] ${line}`)

/** The node arguments of an npm script `exec node <args>` (package.json), e.g. the flags and `src/main.ts`. */
const npmScriptNodeArgs = (script: string): ReadonlyArray<string> => {
  const scripts = (JSON.parse(readFileSync("package.json", "utf8")) as { scripts: Record<string, string> }).scripts
  const match = /^exec node (.+)$/.exec(scripts[script] ?? "")
  if (match?.[1] === undefined) throw new Error(`package.json's "${script}" script is not "exec node ..."`)
  return match[1].split(/\s+/)
}
const startArgs = npmScriptNodeArgs("start")

const untilHealthy = async (port: number, deadlineMs: number, running: () => boolean) => {
  while (Date.now() < deadlineMs && running()) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/healthz`)
      if (response.status === 200) return true
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 10))
  }
  return false
}

interface Sample {
  readonly readyMs: number
  readonly idle: MemoryFootprint & { readonly settled: boolean }
}

const once = async (args: ReadonlyArray<string>, env: Record<string, string>): Promise<Sample> => {
  const port = await freePort()
  const started = performance.now()
  const child = spawn(process.execPath, [...args], {
    env: {
      ...process.env,
      APP_ENV: "staging",
      ENCRYPTION_KEYS: benchEncryptionKeys,
      SHUTDOWN_DELAY: "0 seconds",
      LOG_LEVEL: "warn",
      PORT: String(port),
      ...env
    },
    stdio: "ignore"
  })
  const exited = new Promise((r) => child.once("exit", r))
  const ok = await untilHealthy(port, Date.now() + 60_000, () => child.exitCode === null)
  const readyMs = performance.now() - started
  const idle = ok ? await settledFootprint(child.pid) : undefined
  child.kill("SIGTERM")
  await exited
  if (idle === undefined) throw new Error(`server did not become healthy (${JSON.stringify(env)})`)
  return { readyMs, idle }
}

interface Scenario {
  readonly name: string
  readonly command: string
  readonly readyMs: number
  /** Medians of each figure over the runs. */
  readonly idle: MemoryFootprint
  /** Runs whose RSS had not settled after 30 s (their last sample counts). */
  readonly unsettled: number
}

const medianFootprint = (samples: ReadonlyArray<MemoryFootprint>): MemoryFootprint => ({
  rssMb: median(samples.map((s) => s.rssMb)),
  peakMb: median(samples.map((s) => s.peakMb)),
  wasmMb: median(samples.map((s) => s.wasmMb)),
  otherAnonMb: median(samples.map((s) => s.otherAnonMb)),
  fileMb: median(samples.map((s) => s.fileMb))
})

const scenario = async (
  name: string,
  env: () => Record<string, string>,
  options: { readonly before?: () => void; readonly args?: ReadonlyArray<string>; readonly print?: boolean } = {}
): Promise<Scenario> => {
  const args = options.args ?? startArgs
  const samples: Array<Sample> = []
  for (let i = 0; i < runs; i++) {
    options.before?.()
    samples.push(await once(args, env()))
  }
  const result = {
    name,
    command: `node ${args.join(" ")}`,
    readyMs: Math.round(median(samples.map((s) => s.readyMs))),
    idle: medianFootprint(samples.map((s) => s.idle)),
    unsettled: samples.filter((s) => !s.idle.settled).length
  }
  if (options.print !== false) {
    const line = `${name.padEnd(34)} ready ${String(result.readyMs).padStart(5)} ms   idle RSS ${result.idle.rssMb} MB`
    process.stdout.write(`${line}\n`)
  }
  return result
}

const began = Date.now()
const dir = join(tmpdir(), `codex-bench-pglite-${process.pid}`)
const inMemory = await scenario("PGlite in memory", () => ({ PGLITE_DIR: "memory://" }))
const firstBoot = await scenario("PGlite on disk, first boot", () => ({ PGLITE_DIR: dir }), {
  before: () => rmSync(dir, { recursive: true, force: true })
})
const warmBoot = await scenario("PGlite on disk, warm boot", () => ({ PGLITE_DIR: dir }))
const postgres = await scenario("PostgreSQL", () => ({ DATABASE_URL: databaseUrl }))
if (process.env.BENCH_DATABASE_URL === undefined) await dropScratchDatabase(localServer, ownDatabase)
// The warm boot again as plain `node src/main.ts`: what the `start` script's V8 flags change.
const withoutFlags = await scenario("PGlite on disk, warm boot, no flags", () => ({ PGLITE_DIR: dir }), {
  args: startArgs.filter((arg) => !arg.startsWith("--")),
  print: false
})
rmSync(dir, { recursive: true, force: true })
const embedded = [inMemory, firstBoot, warmBoot, withoutFlags]
for (const s of embedded) {
  const m = s.idle
  process.stdout.write(
    `${s.name.padEnd(40)} idle ${m.rssMb} MB (WebAssembly ${m.wasmMb}, other anonymous ${m.otherAnonMb}, ` +
      `files ${m.fileMb}), peak ${m.peakMb} MB${s.unsettled > 0 ? ` (${s.unsettled} runs not settled)` : ""}\n`
  )
}

log("npm run build (the worker is measured as compiled JavaScript, as the container runs it)")
execFileSync("npm", ["run", "build"], { stdio: ["ignore", "ignore", "inherit"] })
const nodeOptions = containerNodeOptions()
const serverUrl = new URL(databaseUrl)
serverUrl.pathname = "/postgres"
const worker: WorkerStartFigures = await measureWorkerStartup(serverUrl.toString(), {
  nodeOptions,
  apiScript: "dist/src/main.js",
  workerScript: "dist/src/worker.js",
  runs: Math.max(runs, 5),
  log
})
const workerMedian = (pick: (run: WorkerStartFigures["runs"][number]) => number) =>
  Math.round(median(worker.runs.map(pick)))
const firstDeliveryMs = workerMedian((run) => run.firstDeliveryMs)
const firstDeliveryCpuMs = workerMedian((run) => run.cpuMs)
const milestones = Object.fromEntries(
  workerMilestones.map((m) => [m, workerMedian((run) => run.milestonesMs[m] ?? Number.NaN)] as const)
)
const workerIdle = medianFootprint(worker.runs.map((run) => run.idle))
process.stdout.write(
  `worker start → first delivery (compiled) ${firstDeliveryMs} ms (${firstDeliveryCpuMs} ms of CPU): node itself ${worker.nodeMs} ms, its ` +
    `${worker.moduleCount} modules ${worker.modulesMs} ms, ${workerMilestones.map((m) => `"${m}" at ${milestones[m]} ms`).join(", ")}; ` +
    `idle RSS ${workerIdle.rssMb} MB\n`
)

const results = {
  meta: {
    date: new Date().toISOString(),
    node: process.version,
    runs,
    loadAverage: readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).map(Number),
    elapsedSeconds: Math.round((Date.now() - began) / 1000)
  },
  npmStart: {
    command: `node ${startArgs.join(" ")}`,
    scenarios: [inMemory, firstBoot, warmBoot, postgres, withoutFlags]
  },
  worker: {
    command: `NODE_OPTIONS="${nodeOptions}" node dist/src/worker.js`,
    firstDeliveryMs,
    firstDeliveryCpuMs,
    nodeMs: worker.nodeMs,
    modulesMs: worker.modulesMs,
    moduleCount: worker.moduleCount,
    milestonesMs: milestones,
    idle: workerIdle,
    runs: worker.runs
  }
}

const mb = (n: number) => (Number.isFinite(n) ? `${Math.round(n)} MB` : "–")
const markdown = `## Start-up and memory

${results.meta.date}, Node ${results.meta.node}, medians of ${runs} runs (the worker: ${worker.runs.length}); load
average ${results.meta.loadAverage.join(", ")} when it ended (2 cores shared with PostgreSQL and other work: compare
the rows, not the absolute times). \`npm run bench:startup\` (bench/startup.ts).

### \`npm start\` (\`${results.npmStart.command}\`)

| database | start → /healthz 200 | RSS idle | WebAssembly memory | other anonymous | file-backed | peak RSS |
|---|---|---|---|---|---|---|
${[...embedded.slice(0, 3), postgres, withoutFlags]
  .map(
    (s) =>
      `| ${s.name}${s === withoutFlags ? ` (\`${s.command}\`)` : ""} | ${s.readyMs} ms | ${mb(s.idle.rssMb)} | ` +
      `${mb(s.idle.wasmMb)} | ${mb(s.idle.otherAnonMb)} | ${mb(s.idle.fileMb)} | ${mb(s.idle.peakMb)} |`
  )
  .join("\n")}

Idle: 10 s or more after ready, once the RSS moved by less than 1 MB over 2 s. WebAssembly memory: the resident
pages of the process's WebAssembly memories (PGlite's: PostgreSQL's heap and its buffer pool, \`shared_buffers\`; a
few MB of smaller modules'). Other anonymous: V8's heap and compiled code, native allocations. File-backed: the node
binary and libraries. Peak: the highest RSS since the spawn (VmHWM).${
  [...embedded, postgres].some((s) => s.unsettled > 0)
    ? " Some runs had not settled after 30 s: their last sample counts."
    : ""
}

### Worker start → first delivery (\`${results.worker.command}\`)

| | ms after spawn |
|---|---|
| Node's own start: the first line of user code runs (a process of its own) | ${worker.nodeMs} |
| the worker's ${worker.moduleCount} modules (Node's built-ins included) loaded and evaluated (a process that only imports them) | ${worker.modulesMs} |
${workerMilestones.map((m) => `| log line "${m}" | ${milestones[m]} |`).join("\n")}
| **the receiver has the first delivery** | **${firstDeliveryMs}** |

The worker had used ${firstDeliveryCpuMs} ms of CPU (user + system, all threads) by then: start-up is CPU-bound, so on
a busy machine the wall-clock figures stretch (see the load average above).

One delivery due, a local receiver answering 204, the production start-up (\`ENCRYPTION_KEYS\` set, so the
re-encryption sweep runs). The worker's RSS once the delivery is recorded: ${mb(workerIdle.rssMb)} (peak ${mb(workerIdle.peakMb)}).
`
const outDir = join("bench", "results")
mkdirSync(outDir, { recursive: true })
writeFileSync(join(outDir, "startup.json"), `${JSON.stringify(results, null, 2)}\n`)
writeFileSync(join(outDir, "startup.md"), markdown)
log(`${results.meta.elapsedSeconds} s; wrote bench/results/startup.{json,md}`)
