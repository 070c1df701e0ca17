/**
 * Timing one drain of the worker throughput scenario (worker-throughput.ts): from the worker process's spawn (its
 * start-up included) to the receiver's last delivery, plus the rate from the first delivery to the last, and the CPU
 * time of the worker process(es) at that moment (deliveries per CPU-second), and apart the store's (the PostgreSQL
 * backends of the drain's database, or the redis-server it started). Each drain checks its store afterwards: every
 * delivery recorded as done. The store-side helpers the rows share are here too.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { connect } from "node:net"
import type pg from "pg"
import { cpuSeconds, freePort, memoryFootprint, stopProcess, waitFor } from "../lib.ts"
import type { BenchReceiver } from "./receiver.ts"

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
  /**
   * The highest RSS a worker process reached from its spawn to the last delivery (VmHWM; the largest of the processes
   * when there are several), in MB.
   */
  readonly peakRssMb: number
}

/** How one row queues, starts, checks and tidies a drain: all `timeDrain` needs to know of the peer. */
export interface Drain {
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

export interface RowDefinition {
  readonly key: string
  readonly name: string
  readonly drain: Drain
}

export const spawnNode = (
  script: string,
  env: Record<string, string>,
  execArgv: ReadonlyArray<string> = []
): ChildProcess =>
  spawn(process.execPath, [...execArgv, script], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "ignore", "inherit"]
  })

/** SIGTERM, then the exit (SIGKILL after 15 s). */
const stopChild = (child: ChildProcess): Promise<void> => stopProcess(child, 15_000)

/** Times one drain of `deliveries` deliveries. */
export const timeDrain = async (receiver: BenchReceiver, deliveries: number, drain: Drain): Promise<DrainRun> => {
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
    const peakRssMb = Math.max(...children.map((child) => memoryFootprint(child.pid).peakMb))
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
      duplicates: tally.repeated,
      peakRssMb
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
export const startRedis = async (): Promise<{
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
export const backendsCpu = async (client: pg.ClientBase, database: string): Promise<number> => {
  const { rows } = await client.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = $1", [
    database
  ])
  return rows.reduce((sum, row) => sum + (backendCpuSeconds(row.pid) || 0), 0)
}
