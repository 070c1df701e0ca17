/** The benchmark's report as Markdown: absolute figures and ratios to the peer or ceiling, then the targets. */
import type { Load } from "../lib.ts"
import type { CatalogSchemaFigures } from "../scenarios/catalog-schema.ts"
import type { DeliveryFigures } from "../scenarios/delivery.ts"
import type { EmbeddedDeliveryFigures } from "../scenarios/embedded-delivery.ts"
import { type WorkerThroughputFigures, workerThroughputTable } from "../scenarios/worker-throughput.ts"

export interface Target {
  readonly name: string
  readonly target: string
  readonly actual: string
  readonly met: boolean
}

export interface Footprint {
  readonly readyMs: number
  readonly idleRssMb: number
  readonly loadRssMb: number
}

export interface Results {
  readonly meta: {
    readonly date: string
    readonly node: string
    readonly smoke: boolean
    readonly durationSeconds: number
    readonly rounds: number
    readonly connections: number
    readonly elapsedSeconds: number
  }
  /** (a) GET /livez per server. */
  readonly ops: Record<string, Load>
  /** (b) GET /v1/events?limit=20 per server. */
  readonly list: Record<string, Load>
  /** (c) */
  readonly publish: { readonly codex: Load; readonly pgbenchTps: number }
  /** (c) with a catalog schema, and the same events without one */
  readonly catalogSchema: CatalogSchemaFigures
  /** (d) */
  readonly delivery: DeliveryFigures
  /** (d) on the embedded database */
  readonly deliveryEmbedded: EmbeddedDeliveryFigures
  /** (e) per database */
  readonly startup: Record<string, Footprint>
  /** (f) */
  readonly workerThroughput: WorkerThroughputFigures
  readonly targets: ReadonlyArray<Target>
}

const times = (a: number, b: number | undefined) =>
  b === undefined || b === 0 ? "–" : `${(Math.round((a / b) * 100) / 100).toFixed(2)}x`

const serverTable = (title: string, figures: Record<string, Load>) => {
  const fastify = figures["Fastify 5"]
  const ceiling = figures["node:http"]
  const rows = Object.entries(figures).map(
    ([name, f]) =>
      `| ${name} | ${f.requestsPerSecond} | ${times(f.requestsPerSecond, fastify?.requestsPerSecond)} | ` +
      `${times(f.requestsPerSecond, ceiling?.requestsPerSecond)} | ${f.p50Ms} ms | ${f.p99Ms} ms | ` +
      `${times(f.p99Ms, fastify?.p99Ms === 0 ? 1 : fastify?.p99Ms)} | ${f.errors} |`
  )
  return [
    `### ${title}`,
    "",
    "| server | req/s | vs Fastify | vs node:http | p50 | p99 | p99 vs Fastify | errors |",
    "|---|---|---|---|---|---|---|---|",
    ...rows,
    ""
  ]
}

export const renderMarkdown = (r: Results): string =>
  [
    `## Benchmark results${r.meta.smoke ? " (smoke run: not figures to quote)" : ""}`,
    "",
    `${r.meta.date}, Node ${r.meta.node}, ${r.meta.connections} connections, median of ${r.meta.rounds} rounds of ` +
      `${r.meta.durationSeconds} s per server (in rotation, after a warm-up); whole run ${r.meta.elapsedSeconds} s. ` +
      "codex-api runs as compiled JavaScript (`npm run build`), as the container runs it; the peers run from their " +
      "TypeScript sources (type stripping costs only at load time). " +
      "Loopback on a shared machine: compare the ratios, not the absolute numbers.",
    "",
    ...serverTable("(a) GET /livez through the full middleware stack", r.ops),
    ...serverTable("(b) GET /v1/events?limit=20, authenticated, PostgreSQL", r.list),
    "### (c) POST /v1/events with a unique Idempotency-Key each, PostgreSQL",
    "",
    "| | per second | vs pgbench | p50 | p99 | errors |",
    "|---|---|---|---|---|---|",
    `| codex-api | ${r.publish.codex.requestsPerSecond} | ${times(r.publish.codex.requestsPerSecond, r.publish.pgbenchTps)} | ` +
      `${r.publish.codex.p50Ms} ms | ${r.publish.codex.p99Ms} ms | ${r.publish.codex.errors} |`,
    `| pgbench, the same statements (10 clients) | ${r.publish.pgbenchTps} | 1.00x | | | |`,
    "",
    "Events of a type whose catalog entry has a realistic JSON Schema (an order: nested lines, `email` and " +
      "`date-time` formats, an enum, a pattern), validated on every publish, against the same events of a tenant " +
      "without a catalog; 10 connections, one endpoint each, no Idempotency-Key (bench/scenarios/catalog-schema.ts):",
    "",
    "| | per second | vs without | p50 | p99 | errors |",
    "|---|---|---|---|---|---|",
    ...(
      [
        ["without a catalog", r.catalogSchema.plain],
        ["with a schema", r.catalogSchema.schema]
      ] as const
    ).map(
      ([name, f]) =>
        `| ${name} | ${f.requestsPerSecond} | ${times(f.requestsPerSecond, r.catalogSchema.plain.requestsPerSecond)} | ` +
        `${f.p50Ms} ms | ${f.p99Ms} ms | ${f.errors} |`
    ),
    "",
    "### (d) Publish → delivery to a local receiver",
    "",
    "| one event at a time | p50 | p99 | max | burst | published/s | delivered/s |",
    "|---|---|---|---|---|---|---|",
    `| ${r.delivery.latencyEvents} events | ${r.delivery.p50Ms} ms | ${r.delivery.p99Ms} ms | ${r.delivery.maxMs} ms | ` +
      `${r.delivery.burstEvents} events, 32 publishers | ${r.delivery.publishedPerSecond} | ${r.delivery.deliveredPerSecond} |`,
    "",
    "On the embedded database (PGlite, no `DATABASE_URL`: the API and its worker in one process, woken in process):",
    "",
    "| one event at a time | p50 | p90 | p99 | max |",
    "|---|---|---|---|---|",
    `| ${r.deliveryEmbedded.events} events | ${r.deliveryEmbedded.p50Ms} ms | ${r.deliveryEmbedded.p90Ms} ms | ` +
      `${r.deliveryEmbedded.p99Ms} ms | ${r.deliveryEmbedded.maxMs} ms |`,
    "",
    "### (e) Startup and memory",
    "",
    "| database | start → /healthz 200 | RSS idle | RSS under load (a) |",
    "|---|---|---|---|",
    ...Object.entries(r.startup).map(
      ([name, f]) => `| ${name} | ${f.readyMs} ms | ${f.idleRssMb} MB | ${f.loadRssMb} MB |`
    ),
    "",
    "### (f) Worker throughput: a queue drained by one worker process",
    "",
    "From the worker's spawn to the receiver's last delivery (each peer doing codex-api's job: body, Standard Webhooks " +
      "signature, keep-alive POST; see bench/peers/); CPU per second of the worker process(es), and apart the " +
      "store's: the PostgreSQL backends of the drain's database, or redis-server.",
    "",
    workerThroughputTable(r.workerThroughput),
    "",
    "### Targets of this round",
    "",
    "| target | wanted | measured | met |",
    "|---|---|---|---|",
    ...r.targets.map((t) => `| ${t.name} | ${t.target} | ${t.actual} | ${t.met ? "yes" : "**no**"} |`),
    ""
  ].join("\n")
