/**
 * Webhook delivery against a local receiver (node:http on 127.0.0.1, answering 204 at once), a codex-api process on
 * PostgreSQL with its worker (LISTEN/NOTIFY), in one run:
 *
 *   1. latency     BENCH_LATENCY_EVENTS events published one at a time: publish request sent → receiver has the body
 *                  (p50, p99, max)
 *   2. throughput  BENCH_BURST_EVENTS events published as fast as 32 concurrent publishers can: deliveries per second,
 *                  from the first publish to the last delivery
 *
 *   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/codex_bench npm run bench:delivery
 *   (an empty or codex-api database)
 */
import { spawn } from "node:child_process"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"

const databaseUrl = process.env.BENCH_DATABASE_URL
if (databaseUrl === undefined) throw new Error("set BENCH_DATABASE_URL to a PostgreSQL database")
const latencyEvents = Number(process.env.BENCH_LATENCY_EVENTS ?? 500)
const burstEvents = Number(process.env.BENCH_BURST_EVENTS ?? 5000)

/** The receiver: when each event id arrived (performance.now()). */
const arrivals = new Map<string, number>()
let onArrival: (() => void) | undefined
const receiver = createServer((req, res) => {
  req.resume()
  req.on("end", () => {
    const id = String(req.headers["webhook-id"])
    if (!arrivals.has(id)) arrivals.set(id, performance.now())
    res.writeHead(204).end()
    onArrival?.()
  })
})
await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve))
const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`

const child = spawn(process.execPath, ["src/main.ts"], {
  env: {
    ...process.env,
    APP_ENV: "development",
    HOST: "127.0.0.1",
    PORT: "0",
    LOG_FORMAT: "json",
    ACCESS_LOG: "false",
    DATABASE_URL: databaseUrl
  },
  stdio: ["ignore", "pipe", "inherit"]
})
const port = await new Promise<number>((resolve, reject) => {
  let out = ""
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    out += chunk
    for (const line of out.split("\n")) {
      if (!line.startsWith("{")) continue
      const entry = JSON.parse(line) as { message?: unknown; port?: unknown }
      if (entry.message === "listening" && typeof entry.port === "number") resolve(entry.port)
    }
  })
  child.once("exit", (code) => reject(new Error(`server exited with ${code}`)))
})
const base = `http://127.0.0.1:${port}`

const post = async (path: string, body: unknown, key?: string) => {
  const response = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key === undefined ? {} : { authorization: `Bearer ${key}` }) },
    body: JSON.stringify(body)
  })
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`)
  return response.json() as Promise<Record<string, unknown>>
}

const tenant = (await post("/admin/tenants", { name: "delivery bench" })) as { apiKey: { key: string } }
const apiKey = tenant.apiKey.key
await post("/v1/endpoints", { url: receiverUrl }, apiKey)

const publish = async (i: number) =>
  ((await post("/v1/events", { type: "bench.event", data: { i } }, apiKey)) as { event: { id: string } }).event.id

const arrived = (id: string) =>
  new Promise<number>((resolve) => {
    const check = () => {
      const at = arrivals.get(id)
      if (at !== undefined) resolve(at)
      else onArrival = check
    }
    check()
  })

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? Number.NaN

// 1. Latency, one event at a time (after a short warm-up).
for (let i = 0; i < 20; i++) await arrived(await publish(i))
const latencies: Array<number> = []
for (let i = 0; i < latencyEvents; i++) {
  const before = performance.now()
  const id = await publish(i)
  latencies.push((await arrived(id)) - before)
}
latencies.sort((a, b) => a - b)
console.log(
  `latency    ${latencyEvents} events one at a time: publish → receiver p50 ${percentile(latencies, 50).toFixed(1)} ms, ` +
    `p99 ${percentile(latencies, 99).toFixed(1)} ms, max ${latencies.at(-1)?.toFixed(1)} ms`
)

// 2. Throughput: a burst from 32 concurrent publishers, until the receiver has every event.
const burstStart = performance.now()
const ids: Array<string> = []
let next = 0
await Promise.all(
  Array.from({ length: 32 }, async () => {
    while (next < burstEvents) ids.push(await publish(next++))
  })
)
const published = performance.now()
let last = 0
for (const id of ids) last = Math.max(last, await arrived(id))
const seconds = (last - burstStart) / 1000
console.log(
  `throughput ${burstEvents} events: published in ${((published - burstStart) / 1000).toFixed(1)} s, all delivered ` +
    `after ${seconds.toFixed(1)} s → ${(burstEvents / seconds).toFixed(0)} deliveries/s`
)

child.kill("SIGTERM")
receiver.close()
receiver.closeAllConnections()
