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
import { spawn } from "node:child_process"
import autocannon from "autocannon"

const databaseUrl = process.env.BENCH_DATABASE_URL
if (databaseUrl === undefined) throw new Error("set BENCH_DATABASE_URL to a PostgreSQL database")
const duration = Number(process.env.BENCH_DURATION ?? 10)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50)

const start = () =>
  new Promise<{ port: number; stop: () => void }>((resolve, reject) => {
    const child = spawn(process.execPath, ["src/main.ts"], {
      env: {
        ...process.env,
        APP_ENV: "development",
        HOST: "127.0.0.1",
        PORT: "0",
        LOG_FORMAT: "json",
        ACCESS_LOG: "false",
        DATABASE_URL: databaseUrl,
        DELIVERY_WORKER: "false",
        // Rate limiting out of the way: its own cost is measured by bench:rate-limit.
        RATE_LIMIT_MAX: "1000000000"
      },
      stdio: ["ignore", "pipe", "inherit"]
    })
    let out = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk
      for (const line of out.split("\n")) {
        if (!line.startsWith("{")) continue
        const entry = JSON.parse(line) as { message?: unknown; port?: unknown }
        if (entry.message === "listening" && typeof entry.port === "number") {
          const port = entry.port
          out = ""
          resolve({ port, stop: () => child.kill("SIGTERM") })
        }
      }
    })
    child.once("exit", (code) => reject(new Error(`server exited with ${code}`)))
  })

const server = await start()
const base = `http://127.0.0.1:${server.port}`
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
server.stop()
