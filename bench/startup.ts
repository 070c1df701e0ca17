/**
 * Startup time to ready (first `GET /healthz` = 200, measured from spawn) and idle RSS, for the embedded database
 * (in memory, on disk first boot, on disk warm boot) and a real PostgreSQL. Medians of a few runs each.
 *
 *   npm run bench:startup
 *
 * BENCH_DATABASE_URL overrides the PostgreSQL database (default: codex_bench on the local server; create it first with
 * `createdb -h 127.0.0.1 -U postgres codex_bench`).
 */
import { spawn } from "node:child_process"
import { rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { benchEncryptionKeys, freePort, median, rssMb } from "./lib.ts"

const runs = Number(process.env.BENCH_RUNS ?? 3)
// A database of the benchmark's own: the app migrates it at startup.
const databaseUrl = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/codex_bench"

const untilHealthy = async (port: number, deadlineMs: number) => {
  while (Date.now() < deadlineMs) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/healthz`)
      if (response.status === 200) return true
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 10))
  }
  return false
}

const once = async (env: Record<string, string>) => {
  const port = await freePort()
  const started = performance.now()
  const child = spawn(process.execPath, ["src/main.ts"], {
    env: {
      ...process.env,
      APP_ENV: "staging",
      ENCRYPTION_KEYS: benchEncryptionKeys,
      SHUTDOWN_DELAY: "0 seconds",
      LOG_LEVEL: "warn",
      PORT: String(port),
      ...env
    },
    stdio: "ignore"
  })
  const ok = await untilHealthy(port, Date.now() + 30_000)
  const readyMs = performance.now() - started
  // Idle RSS once the startup garbage has settled.
  await new Promise((r) => setTimeout(r, 2000))
  const rss = child.pid !== undefined ? rssMb(child.pid) : Number.NaN
  const exited = new Promise((r) => child.once("exit", r))
  child.kill("SIGTERM")
  await exited
  if (!ok) throw new Error(`server did not become healthy (${JSON.stringify(env)})`)
  return { readyMs, rss }
}

const scenario = async (name: string, env: () => Record<string, string>, before?: () => void) => {
  const samples = []
  for (let i = 0; i < runs; i++) {
    before?.()
    samples.push(await once(env()))
  }
  const line = `${name.padEnd(34)} ready ${String(Math.round(median(samples.map((s) => s.readyMs)))).padStart(5)} ms   idle RSS ${median(samples.map((s) => s.rss))} MB`
  process.stdout.write(`${line}\n`)
}

const dir = join(tmpdir(), `codex-bench-pglite-${process.pid}`)
await scenario("PGlite in memory", () => ({ PGLITE_DIR: "memory://" }))
await scenario(
  "PGlite on disk, first boot",
  () => ({ PGLITE_DIR: dir }),
  () => rmSync(dir, { recursive: true, force: true })
)
await scenario("PGlite on disk, warm boot", () => ({ PGLITE_DIR: dir }))
await scenario("PostgreSQL", () => ({ DATABASE_URL: databaseUrl }))
rmSync(dir, { recursive: true, force: true })
