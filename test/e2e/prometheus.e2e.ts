// @module-tag prometheus
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { layer } from "@effect/vitest"
import { Effect, Option } from "effect"
import { afterAll, assert } from "vitest"
import { packageRoot } from "../../layers/PackageInfo.ts"
import { pollPromise } from "../support/poll.ts"
import { freePort } from "../support/ports.ts"
import { TestDatabase, TestDatabaseLive } from "../support/testDatabase.ts"

/**
 * A real Prometheus (Debian package `prometheus`) scrapes a running codex-api and answers `http_requests_total`
 * through its query API. Run with `npm run test:e2e` (CI: .ci/run). codex-api runs on a database of this file's own,
 * cloned from the run's migrated template like every test file's (embedded PGlite when there is no server).
 */

const children: Array<ChildProcess> = []
const dirs: Array<string> = []
afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL")
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

/** Every 200 ms; a read that throws (a process still starting) counts as "not yet". */
const patiently = (timeoutMs: number) => ({ timeoutMs, intervalMs: 200, retryOnError: true })

const start = (command: string, args: ReadonlyArray<string>, env: NodeJS.ProcessEnv) => {
  const child = spawn(command, args, { cwd: packageRoot, env, stdio: ["ignore", "pipe", "pipe"] })
  children.push(child)
  let output = ""
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    output += chunk
  })
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    output += chunk
  })
  return { child, output: () => output }
}

interface QueryResponse {
  readonly status: string
  readonly data: {
    readonly result: ReadonlyArray<{ readonly metric: Record<string, string>; readonly value: [number, string] }>
  }
}

interface RulesResponse {
  readonly data: {
    readonly groups: ReadonlyArray<{
      readonly rules: ReadonlyArray<{
        readonly name: string
        readonly type: "alerting" | "recording"
        readonly health: string
        readonly state?: string
      }>
    }>
  }
}

/** The whole scenario, against codex-api on `databaseUrl` (empty: embedded PGlite). */
const scrapedByPrometheus = async (databaseUrl: string) => {
  const apiPort = await freePort()
  const promPort = await freePort()
  const api = start(process.execPath, ["src/main.ts"], {
    ...process.env,
    APP_ENV: "development",
    HOST: "127.0.0.1",
    PORT: String(apiPort),
    LOG_FORMAT: "json",
    PGLITE_DIR: "memory://",
    DATABASE_URL: databaseUrl
  })
  const base = `http://127.0.0.1:${apiPort}`
  await pollPromise(
    `codex-api on ${base}`,
    async () => (await fetch(`${base}/livez`)).ok,
    (ok) => ok,
    {
      ...patiently(30_000),
      show: (ok) => `${ok}\n${api.output()}`
    }
  )
  for (let i = 0; i < 5; i++) await (await fetch(`${base}/livez`)).text()
  await (await fetch(`${base}/no/such/route`)).text()

  const dir = mkdtempSync(join(tmpdir(), "codex-prom-"))
  dirs.push(dir)
  const config = join(dir, "prometheus.yml")
  writeFileSync(
    config,
    [
      "global:",
      "  scrape_interval: 1s",
      "  evaluation_interval: 1s",
      "rule_files:",
      `  - ${join(packageRoot, "infra", "observability", "prometheus", "alerts.yml")}`,
      "scrape_configs:",
      "  - job_name: codex-api",
      "    metrics_path: /metrics",
      "    static_configs:",
      `      - targets: ["127.0.0.1:${apiPort}"]`,
      ""
    ].join("\n")
  )
  const prometheus = start(
    "prometheus",
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${promPort}`
    ],
    process.env
  )
  prometheus.child.once("error", (error) => {
    throw new Error(`prometheus (Debian package prometheus) could not start: ${error.message}`)
  })
  const promBase = `http://127.0.0.1:${promPort}`
  const query = async (expr: string) => {
    const response = await fetch(`${promBase}/api/v1/query?query=${encodeURIComponent(expr)}`)
    return (await response.json()) as QueryResponse
  }

  const livez = await pollPromise(
    "Prometheus to scrape codex-api",
    async () => {
      const result = await query('http_requests_total{job="codex-api",route="/livez"}')
      return result.data.result.find((r) => r.metric.status_code === "200" && r.metric.method === "GET")
    },
    (sample): sample is NonNullable<typeof sample> => sample !== undefined && Number(sample.value[1]) >= 5,
    { ...patiently(60_000), show: (sample) => `${JSON.stringify(sample)}\n${prometheus.output()}` }
  )
  assert.strictEqual(livez.metric.__name__, "http_requests_total")
  assert.strictEqual(livez.metric.job, "codex-api")

  const unmatched = await query('http_requests_total{job="codex-api",route="unmatched",status_code="404"}')
  assert.strictEqual(unmatched.status, "success")
  assert.strictEqual(Number(unmatched.data.result[0]?.value[1]), 1)

  const up = await query('up{job="codex-api"}')
  assert.strictEqual(up.data.result[0]?.value[1], "1")

  // The recording rules' expression evaluates against the real series.
  const ratio = await query('sum by (route) (rate(http_requests_total{job="codex-api"}[1m]))')
  assert.strictEqual(ratio.status, "success")

  // The outbox gauges are read from the database at each scrape: 0 on an empty outbox, never absent.
  for (const expr of [
    'max(webhook_deliveries_pending{job="codex-api"})',
    'max(webhook_outbox_oldest_age_seconds{job="codex-api"})'
  ]) {
    const gauge = await query(expr)
    assert.strictEqual(gauge.data.result[0]?.value[1], "0", expr)
  }

  // The shipped rules load and evaluate against the real series without errors.
  const rules = await pollPromise(
    "every rule evaluated",
    async () => {
      const response = await fetch(`${promBase}/api/v1/rules`)
      const body = (await response.json()) as RulesResponse
      return body.data.groups.flatMap((g) => g.rules)
    },
    (all) => all.length > 0 && all.every((r) => r.health === "ok"),
    patiently(30_000)
  )
  assert.isAtLeast(rules.filter((r) => r.type === "alerting").length, 7)
  assert.isTrue(
    rules.filter((r) => r.type === "alerting").every((r) => r.state === "inactive"),
    JSON.stringify(rules.filter((r) => r.state !== "inactive").map((r) => r.name))
  )

  api.child.kill("SIGTERM")
  prometheus.child.kill("SIGTERM")
}

layer(TestDatabaseLive)("Prometheus scraping codex-api", (it) => {
  it.effect(
    "answers http_requests_total and the outbox gauges; the alert rules evaluate, none firing",
    () =>
      Effect.gen(function* () {
        const database = yield* TestDatabase
        yield* Effect.promise(() => scrapedByPrometheus(Option.getOrElse(database.url, () => "")))
      }),
    90_000
  )
})
