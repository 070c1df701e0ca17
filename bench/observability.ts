/**
 * What observability costs on the hot path: autocannon (50 connections, 10 s, loopback) against `GET /livez` of a
 * codex-api process in three configurations, in one run:
 *
 *   1. none            ACCESS_LOG=false, METRICS_ENABLED=false, no OTLP endpoint (the request id stays: it is free)
 *   2. logs + metrics  one JSON access line per request (ACCESS_LOG_PROBES=true, so /livez is logged at info, written to
 *                      /dev/null through the buffered sink) + the HTTP metrics
 *   3. + tracing 100%  2 plus a server span per request, OTEL_TRACES_SAMPLER=always_on, BatchSpanProcessor + OTLP/HTTP
 *                      into a local receiver (in this process, counting spans)
 *
 *   npm run bench:observability     (BENCH_DURATION=10 BENCH_CONNECTIONS=50 BENCH_ROUNDS=3 BENCH_DATABASE_URL=...)
 *
 * The server runs as its own process (the project's Node 24, `src/main.ts`), autocannon in this one. /livez never
 * touches the database, so the embedded in-memory database is used unless BENCH_DATABASE_URL is set.
 */
import { spawn } from "node:child_process"
import { createServer as createHttpServer } from "node:http"
import autocannon from "autocannon"
import { benchEncryptionKeys, freePort, median } from "./lib.ts"

const duration = Number(process.env.BENCH_DURATION ?? 10)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50)
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const warmupSeconds = 3

/** A minimal OTLP/HTTP receiver: reads and counts the spans of every export. */
const startReceiver = () =>
  new Promise<{ url: string; spans: () => number; close: () => void }>((resolve) => {
    let spans = 0
    const server = createHttpServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (chunk: Buffer) => chunks.push(chunk))
      req.on("end", () => {
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
            resourceSpans?: Array<{ scopeSpans?: Array<{ spans?: Array<unknown> }> }>
          }
          for (const rs of body.resourceSpans ?? [])
            for (const ss of rs.scopeSpans ?? []) spans += ss.spans?.length ?? 0
        } catch {
          // not JSON: still acknowledged
        }
        res.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resolve({ url: `http://127.0.0.1:${port}`, spans: () => spans, close: () => server.close() })
    })
  })

const startApp = async (env: Record<string, string>) => {
  const port = await freePort()
  const child = spawn(process.execPath, ["src/main.ts"], {
    env: {
      PATH: process.env.PATH ?? "",
      APP_ENV: "staging",
      ENCRYPTION_KEYS: benchEncryptionKeys,
      HOST: "127.0.0.1",
      PORT: String(port),
      LOG_FORMAT: "json",
      LOG_LEVEL: "info",
      SHUTDOWN_DELAY: "0 seconds",
      PGLITE_DIR: "memory://",
      DATABASE_URL: process.env.BENCH_DATABASE_URL ?? "",
      ...env
    },
    // stdout (the JSON log) is written for real, to /dev/null.
    stdio: ["ignore", "ignore", "inherit"]
  })
  const deadline = Date.now() + 60_000
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/livez`)).ok) break
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline || child.exitCode !== null) throw new Error("codex-api did not start")
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const stop = () =>
    new Promise<void>((resolve) => {
      child.once("exit", () => resolve())
      child.kill("SIGTERM")
    })
  return { url: `http://127.0.0.1:${port}/livez`, stop }
}

interface Figures {
  readonly name: string
  readonly rounds: ReadonlyArray<{ readonly requestsPerSecond: number; readonly p99Ms: number }>
  errors: number
}

const configurations: ReadonlyArray<readonly [string, (receiverUrl: string) => Record<string, string>]> = [
  ["none", () => ({ ACCESS_LOG: "false", METRICS_ENABLED: "false" })],
  ["logs + metrics", () => ({ ACCESS_LOG: "true", ACCESS_LOG_PROBES: "true", METRICS_ENABLED: "true" })],
  [
    "logs + metrics + tracing 100%",
    (receiverUrl) => ({
      ACCESS_LOG: "true",
      ACCESS_LOG_PROBES: "true",
      METRICS_ENABLED: "true",
      OTEL_EXPORTER_OTLP_ENDPOINT: receiverUrl,
      OTEL_TRACES_SAMPLER: "always_on"
    })
  ]
]

// The three servers run side by side and are measured in turns, several rounds: on a shared machine the load of other
// processes comes and goes, and rotating spreads it over the configurations instead of penalising one of them.
const receiver = await startReceiver()
const apps = await Promise.all(configurations.map(([, env]) => startApp(env(receiver.url))))
const figures: Array<Figures> = configurations.map(([name]) => ({ name, rounds: [], errors: 0 }))
try {
  for (const app of apps) await autocannon({ url: app.url, connections, duration: warmupSeconds })
  for (let round = 0; round < rounds; round++) {
    for (const [index, app] of apps.entries()) {
      const result = await autocannon({ url: app.url, connections, duration })
      const f = figures[index]
      if (f === undefined) continue
      ;(f.rounds as Array<{ requestsPerSecond: number; p99Ms: number }>).push({
        requestsPerSecond: Math.round(result.requests.average),
        p99Ms: result.latency.p99
      })
      f.errors += result.errors + result.non2xx
    }
  }
} finally {
  await Promise.all(apps.map((app) => app.stop()))
  receiver.close()
}

/** The best round: the one least disturbed by other load. */
const best = (f: Figures) =>
  f.rounds.reduce((a, b) => (b.requestsPerSecond > a.requestsPerSecond ? b : a), { requestsPerSecond: 0, p99Ms: 0 })

const baseline = best(figures[0] ?? { name: "", rounds: [], errors: 0 }).requestsPerSecond || 1
console.log(
  `GET /livez, ${connections} connections, ${duration} s per round, ${rounds} rounds in rotation (after ${warmupSeconds} s warm-up), Node ${process.version}`
)
console.log("| configuration | req/s (best round) | vs none | p99 (that round) | req/s (median round) | errors |")
console.log("|---|---|---|---|---|---|")
for (const f of figures) {
  const b = best(f)
  const ratio = `${Math.round((b.requestsPerSecond / baseline) * 100)}%`
  const med = median(f.rounds.map((r) => r.requestsPerSecond))
  console.log(`| ${f.name} | ${b.requestsPerSecond} | ${ratio} | ${b.p99Ms} ms | ${med} | ${f.errors} |`)
}
console.log(`spans received by the local OTLP receiver: ${receiver.spans()}`)
