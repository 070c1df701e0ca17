/**
 * What rate limiting costs per request: autocannon (50 connections, loopback) against three codex-api processes, one
 * per configuration, each on two routes, measured in rotation (BENCH_ROUNDS rounds, the median reported):
 *
 *   configurations  off     RATE_LIMIT_ENABLED=false
 *                   memory  RATE_LIMIT_STORE=memory (the default)
 *                   redis   RATE_LIMIT_STORE=redis, on a redis-server this script starts (no persistence)
 *   routes          tenant  GET /v1/endpoints with an API key: key lookup (cached) + the tenant's bucket + one query
 *                   ip      GET /nope: the client IP's bucket, then the router's 404 problem (no database)
 *
 * The quota is set far above what the run sends (RATE_LIMIT_MAX=1000000000), so every request does the whole check
 * and none is refused; access log off.
 *
 *   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/codex_bench npm run bench:rate-limit
 *   (an empty or codex-api database; without it the embedded in-memory database; BENCH_DURATION=5
 *   BENCH_ROUNDS=3 BENCH_CONNECTIONS=50; REDIS_SERVER=redis-server)
 */
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import autocannon from "autocannon"
import { freePort, startServer } from "./lib.ts"

const duration = Number(process.env.BENCH_DURATION ?? 5)
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50)
const databaseUrl = process.env.BENCH_DATABASE_URL ?? ""
const warmupSeconds = 3

/**
 * CPU time (user + system, ms) the process has used, from /proc (Linux; clock ticks of 10 ms). Per request it is far
 * steadier than req/s on a shared machine: waiting for a core costs throughput, not CPU time.
 */
const cpuMs = (pid: number | undefined): number => {
  if (pid === undefined) return 0
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? []
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return 0
  }
}

const startRedis = async () => {
  const port = await freePort()
  const child = spawn(
    process.env.REDIS_SERVER ?? "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: ["ignore", "pipe", "inherit"] }
  )
  await new Promise<void>((resolve, reject) => {
    let out = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk
      if (out.includes("Ready to accept connections")) resolve()
    })
    child.once("exit", (code) => reject(new Error(`redis-server exited with ${code}`)))
  })
  return { url: `redis://127.0.0.1:${port}`, stop: () => child.kill("SIGKILL") }
}

const start = (env: Record<string, string>) =>
  startServer("codex-api", "src/main.ts", {
    APP_ENV: "development",
    LOG_FORMAT: "json",
    ACCESS_LOG: "false",
    DATABASE_URL: databaseUrl,
    PGLITE_DIR: "memory://",
    DELIVERY_WORKER: "false",
    RATE_LIMIT_MAX: "1000000000",
    ...env
  })

const redis = await startRedis()
const configurations: ReadonlyArray<readonly [string, Record<string, string>]> = [
  ["off", { RATE_LIMIT_ENABLED: "false" }],
  ["memory", { RATE_LIMIT_STORE: "memory" }],
  ["redis", { RATE_LIMIT_STORE: "redis", REDIS_URL: redis.url }]
]

interface Target {
  readonly pid: number | undefined
  readonly name: string
  readonly route: string
  readonly url: string
  readonly headers: Record<string, string>
  readonly rounds: Array<{
    readonly rps: number
    readonly p99: number
    readonly cpuUsPerRequest: number
    readonly errors: number
    readonly limited: number
  }>
}

// All three servers run at once and are measured in rotation, round after round: the machine is shared, and load
// drifting during the run then hits every configuration alike.
const servers = await Promise.all(configurations.map(([, env]) => start(env)))
const targets: Array<Target> = []
for (const [index, [name]] of configurations.entries()) {
  const base = servers[index]?.base ?? ""
  const pid = servers[index]?.child.pid
  const created = (await (
    await fetch(`${base}/admin/tenants`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: `bench ${name}` })
    })
  ).json()) as { apiKey: { key: string } }
  targets.push(
    {
      pid,
      name,
      route: "tenant",
      url: `${base}/v1/endpoints`,
      headers: { authorization: `Bearer ${created.apiKey.key}` },
      rounds: []
    },
    { pid, name, route: "ip", url: `${base}/nope`, headers: {}, rounds: [] }
  )
}

console.log(
  `${connections} connections, ${rounds} rounds of ${duration} s, database: ${databaseUrl === "" ? "PGlite" : "PostgreSQL"}`
)
for (const target of targets) {
  await autocannon({ url: target.url, connections, duration: warmupSeconds, headers: target.headers })
}
for (let round = 0; round < rounds; round++) {
  for (const target of targets) {
    const cpuBefore = cpuMs(target.pid)
    const result = await autocannon({ url: target.url, connections, duration, headers: target.headers })
    const cpu = cpuMs(target.pid) - cpuBefore
    target.rounds.push({
      cpuUsPerRequest: (1000 * cpu) / Math.max(1, result.requests.total),
      rps: result.requests.average,
      p99: result.latency.p99,
      errors: result.errors,
      limited: result.statusCodeStats?.["429"]?.count ?? 0
    })
  }
}
const median = (values: ReadonlyArray<number>) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0
for (const route of ["tenant", "ip"]) {
  const baseline = targets.find((t) => t.name === "off" && t.route === route)
  const baselineRps = median(baseline?.rounds.map((r) => r.rps) ?? [])
  const baselineCpu = median(baseline?.rounds.map((r) => r.cpuUsPerRequest) ?? [])
  for (const target of targets.filter((t) => t.route === route)) {
    const rps = median(target.rounds.map((r) => r.rps))
    const cpu = median(target.rounds.map((r) => r.cpuUsPerRequest))
    console.log(
      `${route.padEnd(7)} ${target.name.padEnd(7)} median ${rps.toFixed(0).padStart(6)} req/s (${((100 * rps) / baselineRps).toFixed(0)}% of off)  ` +
        `rounds ${target.rounds.map((r) => r.rps.toFixed(0)).join(" / ")}  p99 (median) ${median(target.rounds.map((r) => r.p99))} ms  ` +
        `server CPU ${cpu.toFixed(0)} µs/request (${cpu - baselineCpu >= 0 ? "+" : ""}${(cpu - baselineCpu).toFixed(0)})  ` +
        `errors ${target.rounds.reduce((n, r) => n + r.errors, 0)}  429 ${target.rounds.reduce((n, r) => n + r.limited, 0)}`
    )
  }
}
await Promise.all(servers.map((server) => server.stop()))
redis.stop()
