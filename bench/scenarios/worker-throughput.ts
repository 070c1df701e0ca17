/**
 * Worker throughput (issue 17): a queue of `events × endpoints` deliveries (100 × 100 = 10,000) to a local receiver
 * answering 204, drained by one worker process at concurrency 32: codex-api's worker beside the peers a Node team
 * would use instead doing the same job (graphile-worker, BullMQ, a bare loop: the rows, worker-rows.ts).
 *
 * Each run times one drain per row (worker-drain.ts: spawn → last delivery, the worker's and the store's CPU time),
 * the rows in rotation, so that a drift of the machine over the runs falls on every row alike.
 */
import { median } from "../lib.ts"
import { startReceiver } from "./receiver.ts"
import { type DrainRun, type RowDefinition, timeDrain } from "./worker-drain.ts"
import { bullmqRows, codexRows, graphileRows, loopRows, type RowContext } from "./worker-rows.ts"

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

export const measureWorkerThroughput = async (
  serverUrl: string,
  options: WorkerThroughputOptions
): Promise<WorkerThroughputFigures> => {
  const { log, concurrency } = options
  const deliveries = options.events * options.endpoints
  const receiver = await startReceiver()
  const cleanups: Array<() => Promise<void>> = [async () => receiver.close()]
  try {
    const context: RowContext = {
      serverUrl,
      options,
      receiver,
      deliveries,
      peerEnv: { NODE_OPTIONS: options.nodeOptions, CONCURRENCY: String(concurrency) },
      wanted: (key) => options.only === undefined || options.only.includes(key),
      cleanups
    }
    // One peer after the other: the table's order, and the cleanups run in reverse of it.
    const rows: Array<RowDefinition> = []
    for (const build of [codexRows, graphileRows, bullmqRows, loopRows]) rows.push(...(await build(context)))

    const measured = new Map<string, Array<DrainRun>>(rows.map((row) => [row.key, []]))
    for (let run = 1; run <= options.runs; run++) {
      for (const row of rows) {
        const drained = await timeDrain(receiver, deliveries, row.drain)
        measured.get(row.key)?.push(drained)
        log(
          `run ${run}/${options.runs} ${row.name}: ${drained.perSecond}/s (${drained.seconds} s, first delivery after ` +
            `${drained.firstDeliverySeconds} s, then ${drained.steadyPerSecond}/s), ${drained.cpuSeconds} CPU s, ` +
            `${drained.perCpuSecond}/CPU s (store ${drained.storeCpuSeconds} CPU s), ${drained.duplicates} duplicates, ` +
            `peak RSS ${drained.peakRssMb} MB`
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
    `| worker (${figures.deliveries.toLocaleString("en-US")} deliveries, concurrency ${figures.concurrency}) | deliveries/s, spawn → last delivery | first delivery after | deliveries/s, first → last | deliveries per CPU-second | store CPU per delivery | peak RSS | duplicates |`,
    "|---|---|---|---|---|---|---|---|"
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
      )} | ${spread(
        of((r) => r.peakRssMb),
        (n) => `${Math.round(n)} MB`
      )} | ${of((r) => r.duplicates).reduce((a, b) => a + b, 0)} |`
    )
  }
  return lines.join("\n")
}
