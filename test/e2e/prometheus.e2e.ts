// @module-tag prometheus
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { layer } from "@effect/vitest"
import { Effect, Option } from "effect"
import { SqlClient } from "effect/sql"
import { afterAll, assert, describe, inject } from "vitest"
import { packageRoot } from "../../src/domain/PackageInfo.ts"
import { isDefined, pollPromise } from "../support/poll.ts"
import { freePort } from "../support/ports.ts"
import { TestDatabase, TestDatabaseLive, TestSqlLive } from "../support/testDatabase.ts"

/**
 * A real Prometheus (Debian package `prometheus`) runs the shipped configuration
 * (infra/observability/prometheus/prometheus.yml, with its alerts.yml) against a running codex-api: it scrapes the
 * series, the recording rules return data, and alert rules go pending when their condition is made true. Run with
 * `npm run test:e2e` (CI: .ci/run). codex-api runs on a database of this file's own, cloned from the run's migrated
 * template like every test file's (embedded PGlite when there is no server).
 */

const children: Array<ChildProcess> = []
const dirs: Array<string> = []
afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL")
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

const shippedDir = join(packageRoot, "infra", "observability", "prometheus")
const adminToken = "e2e-admin-token"

/** Every 200 ms until `check` returns a value; a read that throws (a process still starting) counts as "not yet". */
const poll = <A>(what: string, deadlineMs: number, check: () => Promise<A | undefined>): Promise<A> =>
  pollPromise(what, check, isDefined, { timeoutMs: deadlineMs, intervalMs: 200, retryOnError: true })

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

interface Rule {
  readonly name: string
  readonly type: "alerting" | "recording"
  readonly health: string
  readonly lastError?: string
  readonly state?: string
}

interface RulesResponse {
  readonly data: { readonly groups: ReadonlyArray<{ readonly rules: ReadonlyArray<Rule> }> }
}

/** Replaces the one occurrence of `from` in the shipped file: a shipped file that changed shape fails here. */
const replaceOnce = (text: string, from: string, to: string): string => {
  assert.strictEqual(text.split(from).length, 2, `the shipped prometheus.yml has exactly one ${JSON.stringify(from)}`)
  return text.replace(from, to)
}

/** The alert names alerts.yml declares, read from the file itself (the expected set, independent of Prometheus). */
const shippedAlertNames = (): ReadonlyArray<string> =>
  [...readFileSync(join(shippedDir, "alerts.yml"), "utf8").matchAll(/^\s*- alert: (\S+)\s*$/gm)].map((m) => m[1] ?? "")

/** codex-api as a process (development, JSON logs) on `databaseUrl` (empty: embedded PGlite). */
const startApi = async (databaseUrl: string, env: NodeJS.ProcessEnv = {}) => {
  const port = await freePort()
  const api = start(process.execPath, ["src/main.ts"], {
    ...process.env,
    APP_ENV: "development",
    HOST: "127.0.0.1",
    PORT: String(port),
    LOG_FORMAT: "json",
    PGLITE_DIR: "memory://",
    DATABASE_URL: databaseUrl,
    ...env
  })
  const base = `http://127.0.0.1:${port}`
  await poll(`codex-api on ${base}\n${api.output()}`, 30_000, async () =>
    (await fetch(`${base}/livez`)).ok ? true : undefined
  )
  return { ...api, port, base }
}

/**
 * Prometheus on the shipped prometheus.yml (its rule file, the shipped alerts.yml), with only what a test must
 * change: the target is codex-api on `apiPort` (not the compose service `codex-api:3000`), and it scrapes and
 * evaluates every second (not every 15 s).
 */
const startPrometheus = async (apiPort: number) => {
  let config = readFileSync(join(shippedDir, "prometheus.yml"), "utf8")
  config = replaceOnce(config, "scrape_interval: 15s", "scrape_interval: 1s")
  config = replaceOnce(config, "evaluation_interval: 15s", "evaluation_interval: 1s")
  config = replaceOnce(config, "  - alerts.yml", `  - ${join(shippedDir, "alerts.yml")}`)
  config = replaceOnce(config, '["codex-api:3000"]', `["127.0.0.1:${apiPort}"]`)
  const dir = mkdtempSync(join(tmpdir(), "codex-prom-"))
  dirs.push(dir)
  const file = join(dir, "prometheus.yml")
  writeFileSync(file, config)
  const port = await freePort()
  const prometheus = start(
    "prometheus",
    [`--config.file=${file}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`],
    process.env
  )
  prometheus.child.once("error", (error) => {
    throw new Error(`prometheus (Debian package prometheus) could not start: ${error.message}`)
  })
  const base = `http://127.0.0.1:${port}`
  const query = async (expr: string) => {
    const response = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(expr)}`)
    const body = (await response.json()) as QueryResponse
    assert.strictEqual(body.status, "success", `${expr}: ${JSON.stringify(body)}`)
    return body.data.result
  }
  /** The first sample of `expr` once `accept` holds for its value. */
  const sampleWhen = (expr: string, accept: (value: number) => boolean, deadlineMs = 30_000) =>
    poll(`${expr} to satisfy ${accept.toString()}\n${prometheus.output()}`, deadlineMs, async () => {
      const [sample] = await query(expr)
      return sample !== undefined && accept(Number(sample.value[1])) ? sample : undefined
    })
  const rules = async (): Promise<ReadonlyArray<Rule>> => {
    const response = await fetch(`${base}/api/v1/rules`)
    return ((await response.json()) as RulesResponse).data.groups.flatMap((g) => g.rules)
  }
  /** Waits until the alert `name` is in `state`; returns its rule. */
  const alertIn = (name: string, state: "pending" | "firing", deadlineMs = 30_000) =>
    poll(`${name} ${state}`, deadlineMs, async () => (await rules()).find((r) => r.name === name && r.state === state))
  return { ...prometheus, query, sampleWhen, rules, alertIn }
}

const stop = (...processes: ReadonlyArray<{ readonly child: ChildProcess }>) => {
  for (const { child } of processes) if (child.exitCode === null) child.kill("SIGTERM")
}

/** Series, recording rules, every rule healthy and quiet; then codex-api stops and CodexApiTargetDown goes pending. */
const scrapedByPrometheus = async (databaseUrl: string) => {
  const api = await startApi(databaseUrl)
  for (let i = 0; i < 5; i++) await (await fetch(`${api.base}/livez`)).text()
  await (await fetch(`${api.base}/no/such/route`)).text()
  const prometheus = await startPrometheus(api.port)

  const livez = await prometheus.sampleWhen(
    'http_requests_total{job="codex-api",route="/livez",method="GET",status_code="200"}',
    (value) => value >= 5,
    60_000
  )
  assert.strictEqual(livez.metric.__name__, "http_requests_total")
  assert.strictEqual(livez.metric.job, "codex-api")
  assert.strictEqual(livez.metric.env, "local", "the shipped target's labels")

  const [unmatched] = await prometheus.query('http_requests_total{job="codex-api",route="unmatched",status_code="404"}')
  assert.strictEqual(Number(unmatched?.value[1]), 1)
  const [up] = await prometheus.query('up{job="codex-api"}')
  assert.strictEqual(up?.value[1], "1")

  // The shipped recording rules return data computed from the real series (Prometheus's own scrapes of /metrics,
  // one a second, are the requests whose rate moves).
  const scrapeRate = await prometheus.sampleWhen('codex:http_requests:rate5m{route="/metrics"}', (value) => value > 0)
  assert.strictEqual(scrapeRate.metric.route, "/metrics")

  // The outbox gauges are read from the database at each scrape: 0 on an empty outbox, never absent.
  for (const expr of [
    'max(webhook_deliveries_pending{job="codex-api"})',
    'max(webhook_outbox_oldest_age_seconds{job="codex-api"})'
  ]) {
    const [gauge] = await prometheus.query(expr)
    assert.strictEqual(gauge?.value[1], "0", expr)
  }

  // Every shipped rule loads and evaluates against the real series without errors, and no alert is active.
  const rules = await poll("every rule evaluated", 30_000, async () => {
    const all = await prometheus.rules()
    return all.length > 0 && all.every((r) => r.health === "ok") ? all : undefined
  })
  const alerts = rules.filter((r) => r.type === "alerting")
  assert.sameMembers(
    alerts.map((r) => r.name),
    [...shippedAlertNames()]
  )
  assert.isAtLeast(alerts.length, 7)
  assert.deepStrictEqual(
    alerts.filter((r) => r.state !== "inactive").map((r) => `${r.name}: ${r.state}`),
    []
  )

  // codex-api goes away: `up` drops to 0 and the target-down alert starts its `for: 2m` (pending).
  stop(api)
  await prometheus.sampleWhen('up{job="codex-api"}', (value) => value === 0)
  const down = await prometheus.alertIn("CodexApiTargetDown", "pending")
  assert.strictEqual(down.health, "ok")
  stop(prometheus)
}

/**
 * A due delivery that has waited 10 minutes (its `next_attempt_at` moved back in SQL, the worker off so it stays
 * pending): the outbox gauges report it and CodexApiOutboxBacklogOld goes pending.
 */
const backlogAlert = (databaseUrl: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const receiverPort = yield* Effect.promise(() => freePort())
    const api = yield* Effect.promise(() =>
      startApi(databaseUrl, { DELIVERY_WORKER: "false", ADMIN_TOKEN: adminToken })
    )
    const post = async (path: string, bearer: string, body: unknown, status = 201) => {
      const response = await fetch(`${api.base}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
        body: JSON.stringify(body)
      })
      const text = await response.text()
      assert.strictEqual(response.status, status, `${path}: ${text}`)
      return JSON.parse(text) as Record<string, unknown>
    }
    yield* Effect.promise(async () => {
      const tenant = (await post("/admin/tenants", adminToken, { name: "e2e backlog" })) as {
        readonly apiKey: { readonly key: string }
      }
      await post("/v1/endpoints", tenant.apiKey.key, { url: `http://127.0.0.1:${receiverPort}/hook` })
      await post("/v1/events", tenant.apiKey.key, { type: "order.created", data: { orderId: "o_1" } }, 202)
    })
    const moved = yield* sql<{
      readonly id: string
    }>`UPDATE deliveries SET next_attempt_at = now() - interval '10 minutes' WHERE status = 'pending' RETURNING id`
    assert.lengthOf(moved, 1, "one pending delivery, moved back 10 minutes")

    yield* Effect.promise(async () => {
      const prometheus = await startPrometheus(api.port)
      const pending = await prometheus.sampleWhen('max(webhook_deliveries_pending{job="codex-api"})', (v) => v === 1)
      assert.strictEqual(pending.value[1], "1")
      const age = await prometheus.sampleWhen('max(webhook_outbox_oldest_age_seconds{job="codex-api"})', (v) => v > 0)
      assert.isAtLeast(Number(age.value[1]), 600)
      assert.isBelow(Number(age.value[1]), 900)
      const backlog = await prometheus.alertIn("CodexApiOutboxBacklogOld", "pending")
      assert.strictEqual(backlog.health, "ok")
      // Only the condition made true: the other alerts stay quiet.
      const active = (await prometheus.rules()).filter((r) => r.type === "alerting" && r.state !== "inactive")
      assert.deepStrictEqual(
        active.map((r) => r.name),
        ["CodexApiOutboxBacklogOld"]
      )
      stop(api, prometheus)
    })
  })

layer(TestDatabaseLive)("Prometheus on the shipped configuration scraping codex-api", (it) => {
  it.effect(
    "scrapes the series, the recording rules return data, every alert evaluates (none active); a stopped codex-api makes CodexApiTargetDown pending",
    () =>
      Effect.gen(function* () {
        const database = yield* TestDatabase
        yield* Effect.promise(() => scrapedByPrometheus(Option.getOrElse(database.url, () => "")))
      }),
    90_000
  )
})

describe.skipIf(inject("testDatabase").kind === "pglite")("the outbox alert (needs a PostgreSQL server)", () => {
  layer(TestSqlLive)("Prometheus on the shipped rules, an old due delivery", (it) => {
    it.effect(
      "the outbox gauges report it and CodexApiOutboxBacklogOld goes pending",
      () =>
        Effect.gen(function* () {
          const database = yield* TestDatabase
          assert.isTrue(Option.isSome(database.url), "a PostgreSQL database of this file's own")
          yield* backlogAlert(Option.getOrElse(database.url, () => ""))
        }),
      90_000
    )
  })
})
