/**
 * What Idempotency-Key costs per request: autocannon (50 connections, loopback) against `POST /v1/events` of a
 * codex-api process on PostgreSQL, in one run each:
 *
 *   1. no key         the plain publish (one INSERT ... statement)
 *   2. new key        a fresh key per request: claim (INSERT ... ON CONFLICT) + transaction around the publish and the
 *                     stored response
 *   3. replay         one key for every request: claim conflict + read of the stored response, no publish
 *
 *   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/codex_bench npm run bench:idempotency
 *   (an empty or codex-api database; BENCH_DURATION=10 BENCH_CONNECTIONS=50)
 */
import autocannon from "autocannon"
import { startServer } from "./lib.ts"

const databaseUrl = process.env.BENCH_DATABASE_URL
if (databaseUrl === undefined) throw new Error("set BENCH_DATABASE_URL to a PostgreSQL database")
const duration = Number(process.env.BENCH_DURATION ?? 10)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50)

const server = await startServer("codex-api", "src/main.ts", {
  APP_ENV: "development",
  LOG_FORMAT: "json",
  ACCESS_LOG: "false",
  DATABASE_URL: databaseUrl,
  DELIVERY_WORKER: "false",
  // Rate limiting out of the way: its own cost is measured by bench:rate-limit.
  RATE_LIMIT_MAX: "1000000000"
})
const base = server.base
const tenant = (await (
  await fetch(`${base}/admin/tenants`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "bench" })
  })
).json()) as { apiKey: { key: string } }
const headers = { authorization: `Bearer ${tenant.apiKey.key}`, "content-type": "application/json" }
const body = JSON.stringify({ type: "bench.event", data: { n: 1 } })

let counter = 0
const run = async (name: string, key: (() => string) | undefined) => {
  const result = await autocannon({
    url: `${base}/v1/events`,
    connections,
    duration,
    method: "POST",
    headers,
    body,
    ...(key === undefined
      ? {}
      : { requests: [{ setupRequest: (req) => ({ ...req, headers: { ...req.headers, "idempotency-key": key() } }) }] })
  })
  const ok = result["2xx"]
  console.log(
    `${name.padEnd(10)} ${result.requests.average.toFixed(0).padStart(6)} req/s  p50 ${result.latency.p50} ms  p99 ${result.latency.p99} ms  2xx ${ok}  non-2xx ${result.non2xx}`
  )
}

await run("warmup", undefined)
await run("no key", undefined)
await run("new key", () => `bench-${Date.now()}-${++counter}`)
await run("replay", () => "bench-same-key")
await server.stop()
