/**
 * `npm run bench`: codex-api side by side with the servers a user would pick instead, on this machine, in one run.
 *
 *   (a) ops path      GET /livez through the full middleware stack: codex-api vs bare node:http (the ceiling),
 *                     Fastify 5 and Express 5 with the equivalent plugins (bench/peers/)
 *   (b) list          authenticated GET /v1/events?limit=20 on PostgreSQL, the same four servers
 *   (c) publish       POST /v1/events with a unique Idempotency-Key each, beside pgbench running the same statements
 *                     (the database's own ceiling); then events validated by a catalog JSON Schema against the same
 *                     events without one (bench/scenarios/catalog-schema.ts)
 *   (d) delivery      publish → local receiver: p50/p99 latency one at a time, deliveries per second in a burst;
 *                     one at a time on the embedded database too (PGlite, API and worker in one process)
 *   (e) startup, RSS  time to ready and RSS idle and under load (a), embedded PGlite and PostgreSQL
 *   (f) worker        10,000 queued deliveries drained by one worker process: codex-api beside graphile-worker,
 *                     BullMQ and the bare loop doing the same job (bench/peers/); one drain each (BENCH_WORKER_RUNS),
 *                     `npm run bench:worker` runs three
 *
 * Servers run as child processes on 127.0.0.1, all with the container's Node flags (the Dockerfile's NODE_OPTIONS),
 * and are measured in rotation, BENCH_ROUNDS rounds of BENCH_DURATION
 * seconds after a warm-up; medians are reported, absolute and as ratios (the machine is shared: absolute numbers
 * drift, ratios from one run hold). Writes bench/results/latest.{json,md} and latest.svg.
 *
 *   npm run bench                     (BENCH_DURATION=8 BENCH_ROUNDS=3 BENCH_CONNECTIONS=50
 *                                      BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres: any database of
 *                                      the server; scratch databases codex_bench_* are created there)
 *   BENCH_SMOKE=1 npm run bench       (seconds per scenario, results to a temporary directory: CI's check that the
 *                                      harness still runs)
 *
 * Exits non-zero when a scenario saw errors (non-2xx answers, connection errors): the figures would be meaningless.
 */
import { execFile, execFileSync } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import type autocannon from "autocannon"
import {
  benchEncryptionKeys,
  containerNodeOptions,
  type Load,
  load,
  median,
  medianLoad,
  postJson,
  rssMb,
  type Server,
  scratchDatabase,
  startServer
} from "./lib.ts"
import { chartSvg } from "./report/chart.ts"
import { type Results, renderMarkdown, type Target } from "./report/markdown.ts"
import { type CatalogSchemaFigures, measureCatalogSchema } from "./scenarios/catalog-schema.ts"
import { type DeliveryFigures, measureDelivery } from "./scenarios/delivery.ts"
import { type EmbeddedDeliveryFigures, measureEmbeddedDelivery } from "./scenarios/embedded-delivery.ts"
import { measureWorkerThroughput, type WorkerThroughputFigures } from "./scenarios/worker-throughput.ts"

const smoke = process.env.BENCH_SMOKE === "1" || process.env.BENCH_SMOKE === "true"
const duration = Number(process.env.BENCH_DURATION ?? (smoke ? 1 : 8))
const rounds = Number(process.env.BENCH_ROUNDS ?? (smoke ? 1 : 3))
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50)
const warmup = smoke ? 1 : 2
const serverUrl = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres"
const outDir = smoke ? join(tmpdir(), "codex-bench-smoke") : join("bench", "results")
const adminToken = "bench-admin-token-0123456789abcdef"

const log = (line: string) => console.error(`[bench] ${line}`)
const began = Date.now()

// codex-api runs as it runs in production (the container): compiled JavaScript. `npm start` runs the TypeScript
// sources through Node's type stripping instead, which loads a compiler at startup; (e) reports that form too.
if (process.env.DIST_BUILT === "1") {
  log("dist/ as npm run build just made it (DIST_BUILT=1): codex-api is measured as compiled JavaScript")
} else {
  log("npm run build (codex-api is measured as compiled JavaScript, as the container runs it)")
  execFileSync("npm", ["run", "build"], { stdio: ["ignore", "ignore", "inherit"] })
}
const codexScript = "dist/src/main.js"

const nodeOptions = containerNodeOptions()
const codexEnv = (databaseUrl: string): Record<string, string> => ({
  NODE_OPTIONS: nodeOptions,
  APP_ENV: "staging",
  ADMIN_TOKEN: adminToken,
  ENCRYPTION_KEYS: benchEncryptionKeys,
  LOG_FORMAT: "json",
  LOG_LEVEL: "info",
  ACCESS_LOG: "true",
  // The peers log every request, probes included: so does codex-api here.
  ACCESS_LOG_PROBES: "true",
  METRICS_ENABLED: "true",
  // Rate limiting on, in memory, with a limit the benchmark never reaches: pure cost, as in the peers.
  RATE_LIMIT_MAX: "1000000000",
  SHUTDOWN_DELAY: "0 seconds",
  DELIVERY_WORKER: "false",
  DATABASE_URL: databaseUrl
})

const peers: ReadonlyArray<readonly [string, string]> = [
  ["node:http", "bench/peers/node-http.ts"],
  ["Fastify 5", "bench/peers/fastify.ts"],
  ["Express 5", "bench/peers/express.ts"]
]

/** Every server measured in turn, `rounds` times, after a warm-up each; the median round of each. */
const rotate = async (
  servers: ReadonlyArray<Server>,
  options: (server: Server) => Parameters<typeof load>[0]
): Promise<Record<string, Load>> => {
  for (const server of servers) await load({ ...options(server), duration: warmup })
  const measured = new Map<string, Array<Load>>(servers.map((s) => [s.name, []]))
  for (let round = 0; round < rounds; round++) {
    for (const server of servers) measured.get(server.name)?.push(await load({ ...options(server), duration }))
  }
  return Object.fromEntries([...measured].map(([name, loads]) => [name, medianLoad(loads)]))
}

// Setup: a scratch database, codex-api migrating it, a tenant with events to list and one without any to publish to.
const databaseUrl = await scratchDatabase(serverUrl, "codex_bench_run")
const codex = await startServer("codex-api", codexScript, codexEnv(databaseUrl))
const servers: Array<Server> = [codex]
let ops: Record<string, Load> = {}
let list: Record<string, Load> = {}
let publish: { codex: Load; pgbenchTps: number } | undefined
let catalogSchema: CatalogSchemaFigures | undefined
try {
  const admin = { authorization: `Bearer ${adminToken}` }
  const createTenant = async (name: string) =>
    (await postJson(`${codex.base}/admin/tenants`, { name }, admin)) as {
      tenant: { id: string }
      apiKey: { key: string }
    }
  const reader = await createTenant("bench reader")
  const readerAuth = { authorization: `Bearer ${reader.apiKey.key}` }
  for (let i = 0; i < 100; i++) {
    await postJson(
      `${codex.base}/v1/events`,
      { type: "order.created", data: { orderId: `o_${i}`, amount: i } },
      readerAuth
    )
  }
  for (const [name, script] of peers) {
    servers.push(await startServer(name, script, { NODE_OPTIONS: nodeOptions, DATABASE_URL: databaseUrl }))
  }

  log(`(a) GET /livez: ${servers.map((s) => s.name).join(", ")}`)
  ops = await rotate(servers, (s) => ({ url: `${s.base}/livez`, connections }))
  log("(b) GET /v1/events?limit=20")
  list = await rotate(servers, (s) => ({ url: `${s.base}/v1/events?limit=20`, connections, headers: readerAuth }))

  log("(c) POST /v1/events with a unique Idempotency-Key each, then pgbench with the same statements")
  const writer = await createTenant("bench writer")
  let key = 0
  const publishOptions = {
    url: `${codex.base}/v1/events`,
    connections,
    method: "POST" as const,
    headers: { authorization: `Bearer ${writer.apiKey.key}`, "content-type": "application/json" },
    body: JSON.stringify({ type: "order.created", data: { orderId: "o_1", amount: 4200 } }),
    requests: [
      {
        setupRequest: (request: autocannon.Request) => ({
          ...request,
          headers: { ...request.headers, "idempotency-key": `bench-${++key}` }
        })
      }
    ]
  }
  const codexPublish = await rotate([codex], () => publishOptions)
  const pgbenchTps = await pgbench(databaseUrl, writer.tenant.id)
  publish = { codex: codexPublish["codex-api"] ?? medianLoad([]), pgbenchTps }

  log("(c) POST /v1/events validated by a catalog JSON Schema, against the same events without a catalog")
  catalogSchema = await measureCatalogSchema({
    base: codex.base,
    adminHeaders: admin,
    rounds,
    seconds: duration,
    warmupSeconds: warmup,
    connections: 10,
    log: (line) => log(`(c) schema ${line}`)
  })
} finally {
  await Promise.all(servers.map((s) => s.stop()))
}

log("(d) publish → delivery")
const delivery: DeliveryFigures = await measureDelivery(
  await scratchDatabase(serverUrl, "codex_bench_delivery"),
  codexScript,
  {
    nodeOptions,
    latencyEvents: smoke ? 20 : 500,
    burstEvents: smoke ? 200 : 5000
  }
)

log("(d) publish → delivery on the embedded database")
const deliveryEmbedded: EmbeddedDeliveryFigures = await measureEmbeddedDelivery(codexScript, {
  nodeOptions,
  events: smoke ? 20 : 200
})

log("(e) startup and RSS")
const embeddedDataDir = mkdtempSync(join(tmpdir(), "codex-bench-pglite-"))
/** The node flags of package.json's `start` script, before its entry point. */
const npmStartNodeArgs = ((): ReadonlyArray<string> => {
  const scripts = (JSON.parse(readFileSync("package.json", "utf8")) as { scripts: Record<string, string> }).scripts
  return (scripts.start ?? "").split(/\s+/).filter((word) => word.startsWith("--"))
})()
const footprint = async (
  name: string,
  env: Record<string, string>,
  script = codexScript,
  nodeArgs: ReadonlyArray<string> = []
) => {
  const samples: Array<{ readyMs: number; idleMb: number; loadMb: number }> = []
  for (let i = 0; i < (smoke ? 1 : 3); i++) {
    const server = await startServer(name, script, env, "/healthz", nodeArgs)
    try {
      await new Promise((resolve) => setTimeout(resolve, smoke ? 500 : 2000))
      const idleMb = rssMb(server.child.pid)
      let loadMb = idleMb
      const sampler = setInterval(() => {
        loadMb = Math.max(loadMb, rssMb(server.child.pid))
      }, 200)
      await load({ url: `${server.base}/livez`, connections, duration })
      clearInterval(sampler)
      samples.push({ readyMs: Math.round(server.readyMs), idleMb, loadMb })
    } finally {
      await server.stop()
    }
  }
  return {
    readyMs: median(samples.map((s) => s.readyMs)),
    idleRssMb: median(samples.map((s) => s.idleMb)),
    loadRssMb: median(samples.map((s) => s.loadMb))
  }
}
const startup = {
  // As a newcomer's `npm start` runs it (the TypeScript sources with package.json's node flags, no container flags),
  // on a data directory: the first of the three starts initialises it, the median is a warm boot.
  "embedded PGlite, `npm start`": await footprint(
    "codex-api (PGlite)",
    { ...codexEnv(""), NODE_OPTIONS: "", DATABASE_URL: "", PGLITE_DIR: embeddedDataDir },
    "src/main.ts",
    npmStartNodeArgs
  ),
  PostgreSQL: await footprint("codex-api (PostgreSQL)", codexEnv(databaseUrl)),
  "PostgreSQL, `npm start` (TypeScript sources)": await footprint(
    "codex-api (PostgreSQL, sources)",
    { ...codexEnv(databaseUrl), NODE_OPTIONS: "" },
    "src/main.ts",
    npmStartNodeArgs
  )
}
rmSync(embeddedDataDir, { recursive: true, force: true })

log("(f) worker throughput: codex-api, graphile-worker, BullMQ, the bare loop")
const redisUrl = process.env.REDIS_URL
const workerThroughput: WorkerThroughputFigures = await measureWorkerThroughput(serverUrl, {
  nodeOptions,
  apiScript: codexScript,
  workerScript: "dist/src/worker.js",
  events: smoke ? 10 : 100,
  endpoints: smoke ? 30 : 100,
  concurrency: 32,
  runs: Number(process.env.BENCH_WORKER_RUNS ?? 1),
  ...(redisUrl === undefined || redisUrl === "" ? {} : { redisUrl }),
  log: (line) => log(`(f) ${line}`)
})

/**
 * pgbench running codex-api's publish statements with an idempotency key: the claim, then ONE statement writing the
 * event and its deliveries and completing the key (the key row locked as the gate, as codex-api does).
 */
async function pgbench(url: string, tenantId: string): Promise<number> {
  const script = join(tmpdir(), `codex-bench-publish-${process.pid}.sql`)
  const key = `scope = '${tenantId}' AND key = ':k' AND lock_token = ':t' AND state = 'in_progress'`
  writeFileSync(
    script,
    [
      `\\set n random(1, 2000000000)`,
      `INSERT INTO idempotency_keys (scope, key, fingerprint, method, path, state, lock_token, locked_at, expires_at) VALUES ('${tenantId}', 'pgb-' || :client_id || '-' || :n || '-' || codex_ulid(), repeat('a', 64), 'POST', '/v1/events', 'in_progress', md5(random()::text), now(), now() + interval '5 minutes') ON CONFLICT (scope, key) DO NOTHING RETURNING key AS k, lock_token AS t \\gset`,
      `WITH held AS MATERIALIZED (SELECT 1 FROM idempotency_keys WHERE ${key} FOR UPDATE), event AS (INSERT INTO events (id, tenant_id, type, data, occurred_at) SELECT 'evt_' || codex_ulid(), '${tenantId}', 'order.created', '{"orderId":"o_1","amount":4200}'::json, now() FROM held RETURNING id, type, data, occurred_at, created_at), queued AS (INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id) SELECT 'dlv_' || codex_ulid(), '${tenantId}', event.id, e.id FROM event CROSS JOIN endpoints e WHERE e.tenant_id = '${tenantId}' AND e.enabled AND e.deleted_at IS NULL RETURNING 1), completed AS (UPDATE idempotency_keys SET state = 'completed', response_ref = jsonb_build_object('event', (SELECT id FROM event), 'deliveriesQueued', (SELECT count(*)::int FROM queued)), completed_at = now(), expires_at = now() + interval '5 minutes' WHERE ${key} RETURNING 1) SELECT event.*, (SELECT count(*)::int FROM queued) FROM event;`
    ].join("\n")
  )
  const { stdout } = await promisify(execFile)(
    "pgbench",
    ["-n", "-c", "10", "-j", "2", "-T", String(duration * rounds), "-f", script, url],
    { maxBuffer: 1 << 24 }
  )
  const tps = /tps = ([\d.]+)/.exec(stdout)?.[1]
  if (tps === undefined) throw new Error(`pgbench printed no tps:\n${stdout}`)
  return Math.round(Number(tps))
}

const ratio = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 100) / 100 : Number.NaN)
const fastifyOps = ops["Fastify 5"]
const codexOps = ops["codex-api"]
const pgStartup = startup.PostgreSQL
const drained = (key: string) =>
  median(workerThroughput.rows.find((row) => row.key === key)?.runs.map((run) => run.perSecond) ?? [])
const targets: ReadonlyArray<Target> = [
  {
    name: "(a) req/s vs Fastify with plugins",
    target: ">= 0.6x",
    actual: `${ratio(codexOps?.requestsPerSecond ?? 0, fastifyOps?.requestsPerSecond ?? 0)}x`,
    met: ratio(codexOps?.requestsPerSecond ?? 0, fastifyOps?.requestsPerSecond ?? 0) >= 0.6
  },
  {
    name: "(a) p99 vs Fastify with plugins",
    target: "<= 2x",
    actual: `${ratio(codexOps?.p99Ms ?? 0, Math.max(1, fastifyOps?.p99Ms ?? 0))}x`,
    met: ratio(codexOps?.p99Ms ?? 0, Math.max(1, fastifyOps?.p99Ms ?? 0)) <= 2
  },
  {
    name: "(c) publish rate vs pgbench",
    target: ">= 0.5x",
    actual: `${ratio(publish?.codex.requestsPerSecond ?? 0, publish?.pgbenchTps ?? 0)}x`,
    met: ratio(publish?.codex.requestsPerSecond ?? 0, publish?.pgbenchTps ?? 0) >= 0.5
  },
  {
    name: "(c) publish with a catalog schema vs without",
    target: ">= 0.9x",
    actual: `${catalogSchema?.ratio ?? Number.NaN}x`,
    met: (catalogSchema?.ratio ?? 0) >= 0.9
  },
  { name: "(d) publish → delivery p50", target: "< 20 ms", actual: `${delivery.p50Ms} ms`, met: delivery.p50Ms < 20 },
  {
    name: "(d) publish → delivery on PGlite, p90 / max",
    target: "< 50 ms / < 200 ms",
    actual: `${deliveryEmbedded.p90Ms} ms / ${deliveryEmbedded.maxMs} ms`,
    met: deliveryEmbedded.p90Ms < 50 && deliveryEmbedded.maxMs < 200
  },
  {
    name: "(e) RSS under load (a), PostgreSQL",
    target: "< 200 MB",
    actual: `${pgStartup.loadRssMb} MB`,
    met: pgStartup.loadRssMb < 200
  },
  {
    name: "(f) one worker's drain vs graphile-worker with attempt rows",
    target: ">= 2x",
    actual: `${ratio(drained("codex"), drained("graphile-attempt"))}x`,
    met: ratio(drained("codex"), drained("graphile-attempt")) >= 2
  },
  {
    name: "(f) one worker's drain vs the bare loop",
    target: ">= 0.35x",
    actual: `${ratio(drained("codex"), drained("loop"))}x`,
    met: ratio(drained("codex"), drained("loop")) >= 0.35
  }
]

const results: Results = {
  meta: {
    date: new Date().toISOString(),
    node: process.version,
    smoke,
    durationSeconds: duration,
    rounds,
    connections,
    elapsedSeconds: Math.round((Date.now() - began) / 1000)
  },
  ops,
  list,
  publish: publish ?? { codex: medianLoad([]), pgbenchTps: 0 },
  catalogSchema: catalogSchema ?? { plain: medianLoad([]), schema: medianLoad([]), ratio: Number.NaN },
  delivery,
  deliveryEmbedded,
  startup,
  workerThroughput,
  targets
}

mkdirSync(outDir, { recursive: true })
writeFileSync(join(outDir, "latest.json"), `${JSON.stringify(results, null, 2)}\n`)
writeFileSync(join(outDir, "latest.md"), renderMarkdown(results))
writeFileSync(join(outDir, "latest.svg"), chartSvg(results))
console.log(renderMarkdown(results))
log(`results in ${outDir} (${results.meta.elapsedSeconds} s)`)

const errors = [
  ...Object.values(ops),
  ...Object.values(list),
  results.publish.codex,
  results.catalogSchema.plain,
  results.catalogSchema.schema
].reduce((n, l) => n + l.errors, 0)
if (errors > 0) {
  log(`${errors} errors (non-2xx or connection errors) during the measurements`)
  process.exitCode = 1
}
