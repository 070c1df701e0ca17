/** Shared pieces of the benchmarks: child servers on 127.0.0.1, autocannon runs, medians, RSS, scratch databases. */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { createServer } from "node:net"
import autocannon from "autocannon"
import pg from "pg"

/**
 * The Node flags the container runs with (`ENV NODE_OPTIONS` in the Dockerfile): every server of the benchmark runs
 * with them, so the figures are the container's and the peers run under the same settings.
 */
export const containerNodeOptions = (dockerfile = "Dockerfile"): string => {
  const value = /^\s*NODE_OPTIONS="([^"]*)"/m.exec(readFileSync(dockerfile, "utf8"))?.[1]
  if (value === undefined) throw new Error(`${dockerfile} sets no NODE_OPTIONS="..." (bench/lib.ts reads it)`)
  return value
}

/** `ENCRYPTION_KEYS` for the codex-api processes benchmarks and the drill start outside development (a throwaway key). */
export const benchEncryptionKeys = "bench:OXGhgITwFEExIgY8cMbyVM2zGMPZb91KEiehrfr4+Kg="

export const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

export const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN
}

export const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? Number.NaN

/** Resident set size of a process in MB (Linux). */
export const rssMb = (pid: number | undefined) => {
  if (pid === undefined) return Number.NaN
  try {
    const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0)
    return Math.round(kb / 102.4) / 10
  } catch {
    return Number.NaN
  }
}

/** Where a process's resident memory is (Linux, /proc/<pid>/status and smaps), in MB. */
export interface MemoryFootprint {
  readonly rssMb: number
  /** The high-water mark of the RSS since the process started (VmHWM). */
  readonly peakMb: number
  /**
   * Resident pages of WebAssembly memories: V8 maps each (on 64-bit, with its trap handler) as a read-write region
   * followed by an inaccessible guard region, 8 GiB together. In a codex-api process on the embedded database that is
   * PGlite's memory (PostgreSQL's heap and buffer pool), plus a few MB of smaller modules'.
   */
  readonly wasmMb: number
  /** Other anonymous memory: V8's heap and compiled code, and native allocations (malloc). */
  readonly otherAnonMb: number
  /** File-backed pages: the node binary and shared libraries, shared with other processes. */
  readonly fileMb: number
}

const tenths = (kb: number) => Math.round(kb / 102.4) / 10

const wasmReservationKb = 8 * 1024 * 1024

/** The resident memory of `pid` by kind (NaN everywhere once it has exited). */
export const memoryFootprint = (pid: number | undefined): MemoryFootprint => {
  const gone = {
    rssMb: Number.NaN,
    peakMb: Number.NaN,
    wasmMb: Number.NaN,
    otherAnonMb: Number.NaN,
    fileMb: Number.NaN
  }
  if (pid === undefined) return gone
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8")
    const field = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? Number.NaN)
    const maps = readFileSync(`/proc/${pid}/smaps`, "utf8")
      .split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/)
      .map((block) => {
        const [range = "", perms = "", , , inode = "0"] = (block.split("\n")[0] ?? "").split(/\s+/)
        const [from = "0", to = "0"] = range.split("-")
        return {
          from: BigInt(`0x${from}`),
          to: BigInt(`0x${to}`),
          perms,
          anonymous: inode === "0",
          rssKb: Number(/\nRss:\s+(\d+)/.exec(block)?.[1] ?? 0)
        }
      })
    let wasmKb = 0
    for (const [i, map] of maps.entries()) {
      const guard = maps[i + 1]
      if (map.perms !== "rw-p" || !map.anonymous || guard === undefined || guard.from !== map.to) continue
      if (guard.perms !== "---p" || Number((guard.to - map.from) / 1024n) !== wasmReservationKb) continue
      wasmKb += map.rssKb
    }
    return {
      rssMb: tenths(field("VmRSS")),
      peakMb: tenths(field("VmHWM")),
      wasmMb: tenths(wasmKb),
      otherAnonMb: tenths(field("RssAnon") - wasmKb),
      fileMb: tenths(field("RssFile") + field("RssShmem"))
    }
  } catch {
    return gone
  }
}

/**
 * The footprint of `pid` once it is idle: at least `minimumMs` after the call (V8's memory reducer runs its first full
 * collection about 8 s after start-up's allocations stop: before that, garbage such as a first boot's initdb instance
 * is still resident), then once its RSS moved by less than 1 MB over 2 s (samples every 250 ms), or after `timeoutMs`
 * (`settled` false).
 */
export const settledFootprint = async (
  pid: number | undefined,
  { minimumMs = 10_000, timeoutMs = 30_000 }: { readonly minimumMs?: number; readonly timeoutMs?: number } = {}
): Promise<MemoryFootprint & { readonly settled: boolean }> => {
  const from = Date.now()
  const window: Array<number> = []
  const settled = await waitFor(
    () => {
      window.push(rssMb(pid))
      if (window.length > 9) window.shift()
      return Date.now() - from >= minimumMs && window.length === 9 && Math.max(...window) - Math.min(...window) < 1
    },
    timeoutMs,
    250
  )
  return { ...memoryFootprint(pid), settled }
}

/** Clock ticks per second of /proc/<pid>/stat's CPU times (`getconf CLK_TCK`; 100 on Linux). */
let clockTicks: number | undefined

/** CPU time (user + system) a running process has used so far, in seconds (Linux). */
export const cpuSeconds = (pid: number | undefined): number => {
  if (pid === undefined) return Number.NaN
  clockTicks ??= Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100
  try {
    // The fields after the command name (which may hold spaces, hence after the last ")"): utime and stime are the
    // 14th and 15th of the line, the 12th and 13th here.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return (Number(fields[11]) + Number(fields[12])) / clockTicks
  } catch {
    return Number.NaN
  }
}

export interface Server {
  readonly name: string
  readonly base: string
  readonly child: ChildProcess
  /** Milliseconds from spawn until `readyPath` answered 200. */
  readonly readyMs: number
  /** SIGTERM by PID, then waits for the exit (SIGKILL after 10 s). */
  readonly stop: () => Promise<void>
}

/**
 * `node <script>` on a free port of 127.0.0.1 (PORT and HOST in its environment), ready once `GET readyPath` is 200.
 * Its stdout (the JSON log) goes to /dev/null: written for real, read by no one.
 */
/**
 * The environment of a codex-api server under a delivery benchmark: development (no keys to provide), JSON logs, no
 * access log, a rate limit it never reaches, no shutdown delay; `env` adds or overrides.
 */
export const deliveryBenchEnv = (nodeOptions: string, env: Record<string, string>): Record<string, string> => ({
  NODE_OPTIONS: nodeOptions,
  APP_ENV: "development",
  LOG_FORMAT: "json",
  ACCESS_LOG: "false",
  RATE_LIMIT_MAX: "1000000000",
  SHUTDOWN_DELAY: "0 seconds",
  ...env
})

/** Calls `check` every `intervalMs` until it holds or `timeoutMs` has passed; whether it held. */
export const waitFor = async (
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 50
): Promise<boolean> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return true
    if (Date.now() > deadline) return false
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

/** SIGTERM, then the exit; SIGKILL if it has not exited after `killAfterMs`. */
export const stopProcess = async (child: ChildProcess, killAfterMs: number): Promise<void> => {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  child.kill("SIGTERM")
  const killer = setTimeout(() => child.kill("SIGKILL"), killAfterMs)
  await exited
  clearTimeout(killer)
}

export const startServer = async (
  name: string,
  script: string,
  env: Record<string, string>,
  readyPath = "/livez",
  nodeArgs: ReadonlyArray<string> = []
): Promise<Server> => {
  const port = await freePort()
  const started = performance.now()
  const child = spawn(process.execPath, [...nodeArgs, script], {
    env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", PORT: String(port), ...env },
    stdio: ["ignore", "ignore", "inherit"]
  })
  const base = `http://127.0.0.1:${port}`
  const answers = () =>
    fetch(`${base}${readyPath}`).then(
      (response) => response.status === 200,
      () => false // not listening yet
    )
  const ready = await waitFor(async () => child.exitCode !== null || (await answers()), 60_000, 10)
  if (!ready || child.exitCode !== null) {
    child.kill("SIGKILL")
    throw new Error(`${name} did not get ready`)
  }
  const readyMs = performance.now() - started
  return { name, base, child, readyMs, stop: () => stopProcess(child, 10_000) }
}

export interface Load {
  readonly requestsPerSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  /** Connection errors, timeouts and non-2xx answers. */
  readonly errors: number
}

/** One autocannon run. `requests` may set per-request headers (an Idempotency-Key each, say). */
export const load = async (options: autocannon.Options): Promise<Load> => {
  const result = await autocannon(options)
  return {
    requestsPerSecond: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx
  }
}

/** The median round by requests per second (the p99 reported is that round's). */
export const medianLoad = (rounds: ReadonlyArray<Load>): Load => {
  const sorted = [...rounds].sort((a, b) => a.requestsPerSecond - b.requestsPerSecond)
  const middle = sorted[Math.floor(sorted.length / 2)] ?? { requestsPerSecond: 0, p50Ms: 0, p99Ms: 0, errors: 0 }
  return { ...middle, errors: rounds.reduce((sum, r) => sum + r.errors, 0) }
}

/** A fresh, empty database on the PostgreSQL server of `serverUrl` (any database URL there); returns its URL. */
export const scratchDatabase = async (serverUrl: string, name: string): Promise<string> => {
  const admin = new pg.Client({ connectionString: serverUrl })
  await admin.connect()
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await admin.query(`CREATE DATABASE ${name}`)
  } finally {
    await admin.end()
  }
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  return url.toString()
}

/** Drops a database `scratchDatabase` made (its connections too). */
export const dropScratchDatabase = async (serverUrl: string, name: string): Promise<void> => {
  const admin = new pg.Client({ connectionString: serverUrl })
  await admin.connect()
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  } finally {
    await admin.end()
  }
}

/** POSTs JSON and returns the parsed answer; throws on a non-2xx status. */
export const postJson = async (url: string, body: unknown, headers: Record<string, string> = {}) => {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body)
  })
  if (!response.ok) throw new Error(`POST ${url}: ${response.status} ${await response.text()}`)
  return (await response.json()) as Record<string, unknown>
}
