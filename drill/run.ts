/**
 * `npm run drill`: codex-api as it runs in production once it outgrows one process — three replicas behind nginx,
 * sharing one PostgreSQL and one Redis (the drill's own instances, started here, so it can stop and restart them) —
 * under real load, with faults injected. Every scenario checks its invariants; the run writes
 * drill/results/latest.{json,md} and exits non-zero when any invariant fails.
 *
 *   npm run drill                 (the full drill, a few minutes)
 *   DRILL_SHORT=1 npm run drill   (every scenario in seconds: what CI runs, after the tests; results to a temp dir)
 *
 * Needs nginx, redis-server and the PostgreSQL server binaries (Debian packages nginx, redis-server, postgresql).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { benchEncryptionKeys, freePort, percentile } from "../bench/lib.ts"
import { fuzzRequest } from "./fuzz.ts"
import {
  httpStatus,
  makeCertificate,
  type Nginx,
  type Postgres,
  type Redis,
  type Replica,
  sleep,
  startNginx,
  startPostgres,
  startRedis,
  startReplica,
  stopReplica,
  waitFor
} from "./infra.ts"
import { type Invariant, renderReport, type ScenarioReport } from "./report.ts"
import {
  deliveryCounts,
  newPublishing,
  type Publishing,
  publishUntil,
  type Receiver,
  startReceiver
} from "./traffic.ts"

const short = process.env.DRILL_SHORT === "1" || process.env.DRILL_SHORT === "true"
const scale = (full: number, quick: number) => (short ? quick : full)
const adminToken = "drill-admin-token-0123456789abcdef"
const log = (line: string) => console.error(`[drill] ${line}`)
const began = Date.now()

const dir = mkdtempSync(join(tmpdir(), "codex-drill-"))
const logDir = join(dir, "logs")
mkdirSync(logDir, { recursive: true })

const tls = makeCertificate(dir)

const replicaEnv = (databaseUrl: string, redisUrl: string): Record<string, string> => ({
  // The receivers' self-signed certificate.
  NODE_EXTRA_CA_CERTS: tls.certPath,
  APP_ENV: "staging",
  ADMIN_TOKEN: adminToken,
  ENCRYPTION_KEYS: benchEncryptionKeys,
  LOG_FORMAT: "json",
  LOG_LEVEL: "info",
  DATABASE_URL: databaseUrl,
  DATABASE_POOL_MAX: "10",
  REDIS_URL: redisUrl,
  RATE_LIMIT_STORE: "redis",
  RATE_LIMIT_MAX: "1000000",
  // The receivers are on 127.0.0.1 (https, as staging requires).
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: "true",
  DELIVERY_TIMEOUT: "2 seconds",
  DELIVERY_BACKOFF_BASE: "200 millis",
  DELIVERY_BACKOFF_MAX: "3 seconds",
  DELIVERY_MAX_ATTEMPTS: "10",
  DELIVERY_POLL_INTERVAL: "500 millis",
  // A killed replica's deliveries are sent again once their leases run out (DELIVERY_TIMEOUT + this margin): the
  // short drill waits 5 s for that, not the default 30 s (the margin covers a DNS check and the attempt's record).
  ...(short ? { DELIVERY_LEASE_MARGIN: "5 seconds" } : {}),
  // Short circuit-breaker openings, so the drill sees circuits open and close within seconds.
  BREAKER_OPEN_BASE: "1 second",
  BREAKER_OPEN_MAX: "5 seconds",
  SHUTDOWN_DELAY: "1 second",
  SHUTDOWN_TIMEOUT: "10 seconds",
  IDEMPOTENCY_LOCK_TIMEOUT: "5 seconds"
})

interface Context {
  readonly pg: Postgres
  readonly redis: Redis
  readonly nginx: Nginx
  readonly replicas: Array<Replica>
  readonly env: Record<string, string>
  readonly db: pg.Pool
  readonly apiKey: string
  readonly tenantId: string
  readonly receiver: Receiver
}

const adminPost = async (base: string, path: string, body: unknown) => {
  const response = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: JSON.stringify(body)
  })
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`)
  return response.json() as Promise<Record<string, unknown>>
}

const tenantPost = async (base: string, apiKey: string, path: string, body: unknown) => {
  const response = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
    body: JSON.stringify(body)
  })
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`)
  return response.json() as Promise<Record<string, unknown>>
}

/** A tenant with one endpoint at `receiver` (whose secret the receiver then verifies with). */
const tenantWithEndpoint = async (base: string, name: string, receiver: Receiver) => {
  const created = (await adminPost(base, "/admin/tenants", { name })) as {
    tenant: { id: string }
    apiKey: { key: string }
  }
  const apiKey = created.apiKey.key
  const endpoint = (await tenantPost(base, apiKey, "/v1/endpoints", { url: receiver.url })) as { id: string }
  const secret = (await (
    await fetch(`${base}/v1/endpoints/${endpoint.id}/secret`, { headers: { authorization: `Bearer ${apiKey}` } })
  ).json()) as { secret: string }
  receiver.secret = secret.secret
  return { apiKey, tenantId: created.tenant.id, endpointId: endpoint.id }
}

const storedCount = async (db: pg.Pool, ids: ReadonlySet<string>) => {
  if (ids.size === 0) return 0
  const result = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM events WHERE id = ANY($1)", [[...ids]])
  return result.rows[0]?.n ?? 0
}

const allReady = async (replicas: ReadonlyArray<Replica>) =>
  (await Promise.all(replicas.map((r) => httpStatus(`${r.base}/readyz`)))).every((s) => s === 200)

const fiveXx = (p: Publishing) =>
  Object.entries(p.statuses).reduce((n, [status, count]) => (Number(status) >= 500 ? n + count : n), 0)

const check = (name: string, ok: boolean, detail: string): Invariant => ({ name, ok, detail })

/** Waits for every accepted event to reach the receiver; the common tail of the delivery invariants. */
const settle = async (ctx: Context, publishing: Publishing, deadlineMs: number) => {
  await waitFor(
    deadlineMs,
    async () => deliveryCounts(ctx.receiver, publishing.accepted).delivered >= publishing.accepted.size
  )
  const stored = await storedCount(ctx.db, publishing.accepted)
  const { delivered, duplicates } = deliveryCounts(ctx.receiver, publishing.accepted)
  const latencies = [...publishing.accepted]
    .map((id) => (ctx.receiver.received.get(id)?.[0] ?? Number.NaN) - (publishing.acceptedAt.get(id) ?? Number.NaN))
    .filter((ms) => !Number.isNaN(ms))
    .sort((a, b) => a - b)
  return {
    stored,
    delivered,
    duplicates,
    lost: publishing.accepted.size - stored,
    latency: { p50Ms: Math.round(percentile(latencies, 50)), p99Ms: Math.round(percentile(latencies, 99)) }
  }
}

const baseReport = (
  name: string,
  publishing: Publishing,
  settled: Awaited<ReturnType<typeof settle>>,
  started: number
) => ({
  name,
  requests: publishing.attempts,
  statuses: publishing.statuses,
  accepted: publishing.accepted.size,
  stored: settled.stored,
  delivered: settled.delivered,
  lost: settled.lost,
  duplicates: settled.duplicates,
  fiveXx: fiveXx(publishing),
  hangs: publishing.hangs,
  deliveryLatency: settled.latency,
  durationMs: Date.now() - started
})

const deliveryInvariants = (publishing: Publishing, settled: Awaited<ReturnType<typeof settle>>, ctx: Context) => [
  check("no accepted event lost", settled.lost === 0, `${settled.stored}/${publishing.accepted.size} stored`),
  check(
    "every accepted event delivered at least once",
    settled.delivered === publishing.accepted.size,
    `${settled.delivered}/${publishing.accepted.size} delivered, ${settled.duplicates} duplicates`
  ),
  check("every signature verified", ctx.receiver.invalid === 0, `${ctx.receiver.invalid} invalid`),
  check(
    "no request hung past the client timeout",
    publishing.hangs === 0,
    `${publishing.hangs} hangs ${publishing.hung.join(", ")}`
  )
]

// ---------------------------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------------------------

/** Stops replica `index` with `signal` under load and starts it again on its port. */
const restartReplica = async (ctx: Context, index: number, signal: NodeJS.Signals) => {
  const replica = ctx.replicas[index]
  if (replica === undefined) throw new Error(`no replica ${index}`)
  const exit = await stopReplica(replica, signal)
  ctx.replicas[index] = await startReplica(replica.name, replica.port, ctx.env, logDir)
  return exit
}

/** Runs `fault` while a careful client publishes through nginx (from `warmupMs` in), then stops the load. */
const underLoad = async <A>(
  ctx: Context,
  prefix: string,
  options: { readonly concurrency: number; readonly max: number; readonly warmupMs: number },
  fault: (publishing: Publishing) => Promise<A>
) => {
  const publishing = newPublishing()
  let done = false
  const load = publishUntil(publishing, {
    base: ctx.nginx.base,
    apiKey: ctx.apiKey,
    prefix,
    concurrency: options.concurrency,
    max: options.max,
    stop: () => done
  })
  await sleep(options.warmupMs)
  try {
    return { publishing, result: await fault(publishing) }
  } finally {
    done = true
    await load
  }
}

async function rollingRestart(ctx: Context): Promise<ScenarioReport> {
  const started = Date.now()
  const { publishing, result: exits } = await underLoad(
    ctx,
    "rolling",
    { concurrency: 16, max: scale(20_000, 3000), warmupMs: scale(2000, 500) },
    async () => {
      const exits: Array<{ code: number | null; ms: number }> = []
      for (let i = 0; i < ctx.replicas.length; i++) {
        exits.push(await restartReplica(ctx, i, "SIGTERM"))
        await sleep(scale(1000, 200))
      }
      return exits
    }
  )
  const settled = await settle(ctx, publishing, 60_000)
  return {
    ...baseReport("rolling restart", publishing, settled, started),
    invariants: [
      check("no 5xx seen by the client", fiveXx(publishing) === 0, JSON.stringify(publishing.statuses)),
      check("no reset or refused request", (publishing.statuses["0"] ?? 0) === 0, `${publishing.statuses["0"] ?? 0}`),
      check(
        "each replica exited 0 within its drain deadline (10 s)",
        exits.every((e) => e.code === 0 && e.ms <= 12_000),
        exits.map((e) => `exit ${e.code} after ${e.ms} ms`).join(", ")
      ),
      ...deliveryInvariants(publishing, settled, ctx)
    ]
  }
}

async function crash(ctx: Context): Promise<ScenarioReport> {
  const started = Date.now()
  const { publishing, result: exit } = await underLoad(
    ctx,
    "crash",
    { concurrency: 16, max: scale(10_000, 2000), warmupMs: scale(2000, 700) },
    async () => {
      const exit = await restartReplica(ctx, 0, "SIGKILL")
      await sleep(scale(2000, 500))
      return exit
    }
  )
  // The killed worker's leases expire after DELIVERY_TIMEOUT + DELIVERY_LEASE_MARGIN; then they are sent again.
  const settled = await settle(ctx, publishing, 90_000)
  return {
    ...baseReport("crash (SIGKILL)", publishing, settled, started),
    invariants: [
      check("the replica was killed", exit.code === null, `exit ${exit.code}`),
      check("every event eventually accepted (client retries)", publishing.failed === 0, `${publishing.failed} failed`),
      ...deliveryInvariants(publishing, settled, ctx)
    ]
  }
}

async function databaseRestart(ctx: Context): Promise<ScenarioReport> {
  const started = Date.now()
  const { publishing, result } = await underLoad(
    ctx,
    "db",
    { concurrency: 16, max: scale(10_000, 2000), warmupMs: scale(1500, 500) },
    async () => {
      ctx.pg.stop()
      // While the database is down: every replica's /readyz, and one request through nginx.
      const readyzDown = await Promise.all(ctx.replicas.map((r) => httpStatus(`${r.base}/readyz`, 10_000)))
      const answer = await fetch(`${ctx.nginx.base}/v1/events`, {
        headers: { authorization: `Bearer ${ctx.apiKey}` },
        signal: AbortSignal.timeout(10_000)
      }).then(
        (r) => `${r.status} ${r.headers.get("content-type")}`,
        () => "no answer"
      )
      await sleep(scale(3000, 1000))
      ctx.pg.start()
      const back = Date.now()
      const recovered = await waitFor(30_000, () => allReady(ctx.replicas))
      return { readyzDown, answer, recovered, recoveryMs: Date.now() - back }
    }
  )
  const { readyzDown, answer: problemTypes, recovered, recoveryMs } = result
  const settled = await settle(ctx, publishing, 60_000)
  const fiveHundreds = publishing.statuses["500"] ?? 0
  return {
    ...baseReport("database restart", publishing, settled, started),
    recoveryMs,
    invariants: [
      check(
        "/readyz is 503 on every replica while the database is down",
        readyzDown.every((s) => s === 503),
        readyzDown.join(", ")
      ),
      check(
        "requests during the outage get 503 problem+json",
        problemTypes.startsWith("503 application/problem+json"),
        problemTypes
      ),
      check("never a 500", fiveHundreds === 0, `${fiveHundreds} × 500`),
      check(
        "every replica serves again within 5 s, without a restart",
        recovered && recoveryMs <= 5000,
        `${recoveryMs} ms`
      ),
      ...deliveryInvariants(publishing, settled, ctx)
    ]
  }
}

/** Whether an answer carries a `RateLimit` count, i.e. the rate-limit store answered. */
const rateLimitCounted = async (ctx: Context) => {
  const response = await fetch(`${ctx.nginx.base}/v1/events?limit=1`, {
    headers: { authorization: `Bearer ${ctx.apiKey}` },
    signal: AbortSignal.timeout(10_000)
  })
  await response.arrayBuffer()
  return response.headers.get("ratelimit") !== null
}

async function redisOutage(ctx: Context): Promise<ScenarioReport> {
  const started = Date.now()
  const { publishing, result } = await underLoad(
    ctx,
    "redis",
    { concurrency: 8, max: scale(10_000, 1500), warmupMs: scale(1500, 500) },
    async (load) => {
      await ctx.redis.stop()
      const before = load.accepted.size
      await sleep(scale(4000, 1500))
      const duringOutage = load.accepted.size - before
      const readyDuring = await allReady(ctx.replicas)
      const countedDuring = await rateLimitCounted(ctx)
      await ctx.redis.start()
      // Recovered: the shared counters answer again (a `RateLimit` header on every replica's answers).
      const recovered = await waitFor(15_000, async () =>
        (await Promise.all(ctx.replicas.map(() => rateLimitCounted(ctx)))).every(Boolean)
      )
      return { duringOutage, readyDuring, countedDuring, recovered }
    }
  )
  const { duringOutage, readyDuring, countedDuring, recovered } = result
  const settled = await settle(ctx, publishing, 60_000)
  return {
    ...baseReport("Redis outage", publishing, settled, started),
    invariants: [
      check(
        "the API keeps serving while Redis is down (RATE_LIMIT_ON_STORE_ERROR=allow)",
        duringOutage > 0,
        `${duringOutage} accepted during the outage`
      ),
      check("never a 500", (publishing.statuses["500"] ?? 0) === 0, JSON.stringify(publishing.statuses)),
      check("every replica stays ready", readyDuring, `${readyDuring}`),
      check(
        "counting resumes when Redis returns (no count reported during the outage)",
        !countedDuring && recovered,
        `RateLimit header during: ${countedDuring}, after: ${recovered}`
      ),
      ...deliveryInvariants(publishing, settled, ctx)
    ]
  }
}

const tenantGet = async <A>(base: string, apiKey: string, path: string): Promise<A> => {
  const response = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${apiKey}` } })
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`)
  return (await response.json()) as A
}

interface EndpointHealth {
  readonly health?: { readonly circuit: string; readonly openUntil: string | null }
}

/** Publishes `n` events (4 at a time) and returns the healthy receiver's latency for them. */
const latencyOf = async (base: string, apiKey: string, healthy: Receiver, prefix: string, n: number) => {
  const publishing = newPublishing()
  await publishUntil(publishing, { base, apiKey, prefix, concurrency: 4, max: n, stop: () => false })
  await waitFor(60_000, async () => deliveryCounts(healthy, publishing.accepted).delivered >= publishing.accepted.size)
  const latencies = [...publishing.accepted]
    .map((id) => (healthy.received.get(id)?.[0] ?? Number.NaN) - (publishing.acceptedAt.get(id) ?? Number.NaN))
    .filter((ms) => !Number.isNaN(ms))
    .sort((a, b) => a - b)
  return { publishing, p50Ms: Math.round(percentile(latencies, 50)), p99Ms: Math.round(percentile(latencies, 99)) }
}

async function badReceivers(ctx: Context): Promise<ScenarioReport> {
  const started = Date.now()
  const recovered = { value: false }
  const healthy = await startReceiver(tls)
  const hang = await startReceiver(tls, () => (recovered.value ? 204 : new Promise<number>(() => undefined)))
  const slow = await startReceiver(tls, async () => {
    if (!recovered.value) await sleep(10_000)
    return 204
  })
  // Flapping: every other request fails.
  const flap = await startReceiver(tls, (index) => (recovered.value || index % 2 === 1 ? 204 : 500))
  try {
    const tenant = await tenantWithEndpoint(ctx.nginx.base, "drill bad receivers", healthy)
    const n = scale(200, 40)
    const before = await latencyOf(ctx.nginx.base, tenant.apiKey, healthy, "bad-before", n)

    const bad: Record<string, { readonly receiver: Receiver; readonly id: string }> = {}
    for (const [name, receiver] of [
      ["hanging", hang],
      ["slow (10 s)", slow],
      ["flapping", flap]
    ] as const) {
      const endpoint = (await tenantPost(ctx.nginx.base, tenant.apiKey, "/v1/endpoints", { url: receiver.url })) as {
        id: string
      }
      const secret = await tenantGet<{ secret: string }>(
        ctx.nginx.base,
        tenant.apiKey,
        `/v1/endpoints/${endpoint.id}/secret`
      )
      receiver.secret = secret.secret
      bad[name] = { receiver, id: endpoint.id }
    }
    const phaseStart = new Date().toISOString()
    const circuits = new Map<string, Set<string>>()
    const watch = async () => {
      for (const [name, { id }] of Object.entries(bad)) {
        const endpoint = await tenantGet<EndpointHealth>(ctx.nginx.base, tenant.apiKey, `/v1/endpoints/${id}`)
        const seen = circuits.get(name) ?? new Set<string>()
        seen.add(endpoint.health?.circuit ?? "unknown")
        circuits.set(name, seen)
      }
    }
    let watching = true
    const watcher = (async () => {
      while (watching) {
        await watch().catch(() => undefined)
        await sleep(250)
      }
    })()
    const during = await latencyOf(ctx.nginx.base, tenant.apiKey, healthy, "bad-during", n)
    // Let the bad endpoints' retries and circuits play out a little longer.
    await sleep(scale(8000, 4000))
    watching = false
    await watcher

    // The receivers recover; an operator re-queues what failed meanwhile; everything must arrive.
    recovered.value = true
    for (const { id } of Object.values(bad)) {
      await tenantPost(ctx.nginx.base, tenant.apiKey, `/v1/endpoints/${id}/recover`, { since: phaseStart })
    }
    const everyDelivered = await waitFor(90_000, async () => {
      const pending = await ctx.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM deliveries WHERE tenant_id = $1 AND status <> 'succeeded'",
        [tenant.tenantId]
      )
      return pending.rows[0]?.n === 0
    })
    const closedAgain = await waitFor(60_000, async () => {
      const states = await Promise.all(
        Object.values(bad).map(({ id }) =>
          tenantGet<EndpointHealth>(ctx.nginx.base, tenant.apiKey, `/v1/endpoints/${id}`)
        )
      )
      return states.every((e) => e.health?.circuit === "closed")
    })
    const outcomes = async (endpointId: string) => {
      const rows = await ctx.db.query<{ outcome: string; n: number }>(
        `SELECT a.outcome, count(*)::int AS n FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
         WHERE d.endpoint_id = $1 GROUP BY 1`,
        [endpointId]
      )
      return Object.fromEntries(rows.rows.map((r) => [r.outcome, r.n]))
    }
    const recorded = Object.fromEntries(
      await Promise.all(Object.entries(bad).map(async ([name, { id }]) => [name, await outcomes(id)] as const))
    )
    const seen = (name: string) => [...(circuits.get(name) ?? [])].join("/")
    const publishing = newPublishing()
    for (const p of [before.publishing, during.publishing]) {
      for (const id of p.accepted) publishing.accepted.add(id)
      publishing.attempts += p.attempts
      for (const [k, v] of Object.entries(p.statuses)) publishing.statuses[k] = (publishing.statuses[k] ?? 0) + v
    }
    const { delivered, duplicates } = deliveryCounts(healthy, publishing.accepted)
    return {
      name: "bad receivers",
      requests: publishing.attempts,
      statuses: publishing.statuses,
      accepted: publishing.accepted.size,
      stored: await storedCount(ctx.db, publishing.accepted),
      delivered,
      lost: publishing.accepted.size - (await storedCount(ctx.db, publishing.accepted)),
      duplicates,
      fiveXx: fiveXx(publishing),
      hangs: publishing.hangs,
      deliveryLatency: { p50Ms: during.p50Ms, p99Ms: during.p99Ms },
      durationMs: Date.now() - started,
      invariants: [
        check(
          "healthy endpoint keeps its latency (p50 during <= 2x before + 25 ms)",
          during.p50Ms <= 2 * before.p50Ms + 25,
          `p50/p99 before ${before.p50Ms}/${before.p99Ms} ms, during ${during.p50Ms}/${during.p99Ms} ms`
        ),
        check(
          "the hanging and slow endpoints' circuits opened",
          (circuits.get("hanging")?.has("open") ?? false) && (circuits.get("slow (10 s)")?.has("open") ?? false),
          Object.keys(bad)
            .map((name) => `${name}: ${seen(name)}`)
            .join(", ")
        ),
        check("every circuit closed again after recovery", closedAgain, `${closedAgain}`),
        check(
          "attempts recorded as they happened (timeouts for hanging and slow, failures for flapping)",
          (recorded.hanging?.timeout ?? 0) > 0 &&
            (recorded["slow (10 s)"]?.timeout ?? 0) > 0 &&
            (recorded.flapping?.failed ?? 0) > 0 &&
            Object.values(recorded).every((r) => (r.succeeded ?? 0) > 0),
          JSON.stringify(recorded)
        ),
        check("every delivery succeeded once the receivers recovered", everyDelivered, `${everyDelivered}`),
        check(
          "every signature verified",
          [healthy, hang, slow, flap].every((r) => r.invalid === 0),
          ""
        )
      ]
    }
  } finally {
    for (const receiver of [healthy, hang, slow, flap]) receiver.close()
  }
}

async function concurrentIdenticalPosts(ctx: Context): Promise<ScenarioReport> {
  const started = Date.now()
  const receiver = await startReceiver(tls)
  try {
    const tenant = await tenantWithEndpoint(ctx.nginx.base, "drill idempotency", receiver)
    const n = scale(1000, 200)
    const statuses: Record<string, number> = {}
    const bodies = new Set<string>()
    await Promise.all(
      Array.from({ length: n }, async () => {
        try {
          const response = await fetch(`${ctx.nginx.base}/v1/events`, {
            method: "POST",
            headers: {
              authorization: `Bearer ${tenant.apiKey}`,
              "content-type": "application/json",
              "idempotency-key": "one-key-for-all"
            },
            body: JSON.stringify({ type: "drill.once", data: { n: 1 } }),
            signal: AbortSignal.timeout(30_000)
          })
          statuses[response.status] = (statuses[response.status] ?? 0) + 1
          const text = await response.text()
          if (response.status === 202) bodies.add(text)
        } catch {
          statuses["0"] = (statuses["0"] ?? 0) + 1
        }
      })
    )
    // The tenant's published events (creating its endpoint also wrote an operational `codex.endpoint.created`).
    const events = await ctx.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM events WHERE tenant_id = $1 AND NOT starts_with(type, 'codex.')",
      [tenant.tenantId]
    )
    const count = events.rows[0]?.n ?? -1
    const unexpected = Object.entries(statuses).filter(([s]) => s !== "202" && s !== "409")
    return {
      name: "1,000 identical POSTs across replicas",
      requests: n,
      statuses,
      accepted: statuses["202"] ?? 0,
      stored: count,
      delivered: 0,
      lost: 0,
      duplicates: 0,
      fiveXx: Object.entries(statuses).reduce((s, [k, v]) => (Number(k) >= 500 ? s + v : s), 0),
      hangs: statuses["0"] ?? 0,
      durationMs: Date.now() - started,
      invariants: [
        check("exactly one event stored", count === 1, `${count} events`),
        check("every 202 is the same response (replays)", bodies.size === 1, `${bodies.size} distinct bodies`),
        check("every answer a 202 or a 409", unexpected.length === 0, JSON.stringify(statuses))
      ]
    }
  } finally {
    receiver.close()
  }
}

async function quotaAcrossReplicas(ctx: Context): Promise<ScenarioReport> {
  const started = Date.now()
  const quota = 50
  const created = (await adminPost(ctx.nginx.base, "/admin/tenants", {
    name: "drill quota",
    rateLimit: { limit: quota, windowSeconds: 300 }
  })) as { apiKey: { key: string } }
  const n = scale(600, 200)
  const statuses: Record<string, number> = {}
  let retryAfterMissing = 0
  let next = 0
  await Promise.all(
    Array.from({ length: 24 }, async () => {
      while (next < n) {
        next++
        const response = await fetch(`${ctx.nginx.base}/v1/events?limit=1`, {
          headers: { authorization: `Bearer ${created.apiKey.key}` },
          signal: AbortSignal.timeout(10_000)
        }).catch(() => undefined)
        const status = response?.status ?? 0
        if (response !== undefined) await response.arrayBuffer()
        if (status === 429 && response?.headers.get("retry-after") === null) retryAfterMissing++
        statuses[status] = (statuses[status] ?? 0) + 1
      }
    })
  )
  const accepted = statuses["200"] ?? 0
  const fives = Object.entries(statuses).reduce((sum, [k, v]) => (Number(k) >= 500 ? sum + v : sum), 0)
  return {
    name: "tenant quota across replicas",
    requests: n,
    statuses,
    accepted,
    stored: 0,
    delivered: 0,
    lost: 0,
    duplicates: 0,
    fiveXx: fives,
    hangs: statuses["0"] ?? 0,
    durationMs: Date.now() - started,
    invariants: [
      check(`at most ${quota} accepted in the window, over all replicas`, accepted <= quota, `${accepted} accepted`),
      check("the quota is used, not refused early", accepted === quota, `${accepted} of ${quota}`),
      check(
        "everything else is a 429 with Retry-After",
        (statuses["429"] ?? 0) === n - accepted && retryAfterMissing === 0,
        JSON.stringify(statuses)
      )
    ]
  }
}

async function fuzz(ctx: Context): Promise<ScenarioReport> {
  const started = Date.now()
  const total = scale(10_000, 1000)
  const statuses: Record<string, number> = {}
  let hangs = 0
  let next = 0
  let seed = 42
  const random = () => {
    // mulberry32: reproducible runs
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < total) {
        next++
        const request = fuzzRequest(random, ctx.apiKey)
        try {
          const response = await fetch(`${ctx.nginx.base}${request.path}`, {
            ...request.init,
            signal: AbortSignal.timeout(10_000)
          })
          await response.arrayBuffer()
          statuses[response.status] = (statuses[response.status] ?? 0) + 1
        } catch (error) {
          if (error instanceof Error && error.name === "TimeoutError") hangs++
          statuses["0"] = (statuses["0"] ?? 0) + 1
        }
      }
    })
  )
  const fives = Object.entries(statuses).reduce((s, [k, v]) => (Number(k) >= 500 ? s + v : s), 0)
  const ready = await allReady(ctx.replicas)
  return {
    name: "fuzz",
    requests: total,
    statuses,
    accepted: Object.entries(statuses).reduce((s, [k, v]) => (Number(k) < 300 ? s + v : s), 0),
    stored: 0,
    delivered: 0,
    lost: 0,
    duplicates: 0,
    fiveXx: fives,
    hangs,
    durationMs: Date.now() - started,
    invariants: [
      check("no 5xx", fives === 0, JSON.stringify(statuses)),
      check("no hang", hangs === 0, `${hangs} hangs`),
      check("every replica still ready", ready, `${ready}`)
    ]
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------------------------

log(`infrastructure in ${dir}`)
const postgres = await startPostgres(dir)
const redis = await startRedis()
const env = replicaEnv(postgres.url, redis.url)
const ports = await Promise.all([freePort(), freePort(), freePort()])
const replicas: Array<Replica> = []
const reports: Array<ScenarioReport> = []
let nginx: Nginx | undefined
const db = new pg.Pool({ connectionString: postgres.url, max: 2 })
db.on("error", () => undefined)
try {
  // The first replica migrates the database; the others start beside it.
  replicas.push(await startReplica("replica-1", ports[0] ?? 0, env, logDir))
  replicas.push(
    ...(await Promise.all(ports.slice(1).map((port, i) => startReplica(`replica-${i + 2}`, port, env, logDir))))
  )
  nginx = await startNginx(dir, replicas)
  const receiver = await startReceiver(tls)
  const tenant = await tenantWithEndpoint(nginx.base, "drill", receiver)
  const ctx: Context = {
    pg: postgres,
    redis,
    nginx,
    replicas,
    env,
    db,
    apiKey: tenant.apiKey,
    tenantId: tenant.tenantId,
    receiver
  }
  const scenarios = [
    rollingRestart,
    crash,
    databaseRestart,
    redisOutage,
    badReceivers,
    concurrentIdenticalPosts,
    quotaAcrossReplicas,
    fuzz
  ]
  // DRILL_ONLY=rollingRestart,fuzz runs a subset (by function name), for investigating one scenario.
  const only = process.env.DRILL_ONLY?.split(",").filter((name) => name !== "")
  for (const scenario of scenarios.filter((s) => only === undefined || only.length === 0 || only.includes(s.name))) {
    log(`${scenario.name} ...`)
    const report = await scenario(ctx)
    reports.push(report)
    for (const invariant of report.invariants)
      log(`  ${invariant.ok ? "ok  " : "FAIL"} ${invariant.name}: ${invariant.detail}`)
  }
  receiver.close()
} finally {
  await nginx?.stop()
  await Promise.all(replicas.map((r) => stopReplica(r, "SIGTERM")))
  await db.end().catch(() => undefined)
  await redis.stop()
  try {
    postgres.stop()
  } catch {
    // already down
  }
}

const outDir = short ? join(tmpdir(), "codex-drill-short") : join("drill", "results")
mkdirSync(outDir, { recursive: true })
const results = {
  date: new Date().toISOString(),
  short,
  elapsedSeconds: Math.round((Date.now() - began) / 1000),
  scenarios: reports
}
writeFileSync(join(outDir, "latest.json"), `${JSON.stringify(results, null, 2)}\n`)
writeFileSync(join(outDir, "latest.md"), renderReport(results))
console.log(renderReport(results))
const failed = reports.flatMap((r) => r.invariants.filter((i) => !i.ok).map((i) => `${r.name}: ${i.name}`))
if (failed.length > 0) {
  log(`FAILED invariants:\n  ${failed.join("\n  ")}\n  logs kept in ${logDir}`)
  process.exitCode = 1
} else {
  rmSync(dir, { recursive: true, force: true })
  log(`all invariants held (${results.elapsedSeconds} s)`)
}
