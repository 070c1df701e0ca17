/**
 * What every peer server (bare node:http, Fastify 5, Express 5) shares, so each does the same job as codex-api with
 * the same production pieces: request ids (accepted or generated), one JSON access line per request written to stdout
 * (the benchmark sends it to /dev/null, as it does codex-api's), prom-client RED metrics, API-key auth (SHA-256 of the
 * key, cached 5 s like codex-api's) and the same SQL for `GET /v1/events`.
 *
 * Environment: PORT, DATABASE_URL (optional: without it the /v1 routes answer 503).
 */
import { createHash, randomUUID } from "node:crypto"
import pg from "pg"
import * as Prom from "prom-client"

export const port = Number(process.env.PORT ?? 0)

const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/

/** The incoming X-Request-Id when well-formed, else a fresh UUID (codex-api's rule). */
export const requestId = (incoming: string | Array<string> | undefined): string =>
  typeof incoming === "string" && requestIdPattern.test(incoming) ? incoming : randomUUID()

/** Buffered JSON lines to stdout, flushed every 64 KiB or 100 ms (what codex-api's log sink does). */
const chunks: Array<string> = []
let buffered = 0
const flush = () => {
  if (chunks.length === 0) return
  process.stdout.write(chunks.join(""))
  chunks.length = 0
  buffered = 0
}
setInterval(flush, 100).unref()

export const accessLog = (fields: {
  readonly requestId: string
  readonly method: string
  readonly route: string
  readonly path: string
  readonly status: number
  readonly durationMs: number
  readonly tenantId: string | undefined
  readonly clientIp: string | undefined
  readonly userAgent: string | undefined
}): void => {
  const line = `${JSON.stringify({ time: new Date().toISOString(), level: "info", message: "request", ...fields })}\n`
  chunks.push(line)
  buffered += line.length
  if (buffered >= 65_536) flush()
}

const registry = new Prom.Registry()
Prom.collectDefaultMetrics({ register: registry })
const requests = new Prom.Counter({
  name: "http_requests_total",
  help: "HTTP requests",
  labelNames: ["method", "route", "status_code"],
  registers: [registry]
})
const duration = new Prom.Histogram({
  name: "http_request_duration_seconds",
  help: "HTTP request duration",
  labelNames: ["method", "route", "status_code"],
  buckets: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10],
  registers: [registry]
})

/** RED metrics of one finished request (prom-client's own label handling, as a typical service uses it). */
export const observe = (method: string, route: string, status: number, seconds: number): void => {
  const labels = { method, route, status_code: String(status) }
  requests.inc(labels)
  duration.observe(labels, seconds)
}

export const metricsText = () => registry.metrics()
export const metricsContentType = registry.contentType

/** Rate limiting as the peers configure it: a limit no benchmark reaches, so it is pure cost (in memory). */
export const rateLimit = { max: 1_000_000_000, windowMs: 15 * 60 * 1000 }

const pool =
  process.env.DATABASE_URL === undefined || process.env.DATABASE_URL === ""
    ? undefined
    : new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 })

const keyFormat = /^ck_[A-Za-z0-9_-]{43}$/
const keyCache = new Map<string, { readonly tenantId: string | undefined; readonly until: number }>()

/** The tenant of a `Bearer` API key, or undefined (unknown, revoked, malformed, missing). */
export const authenticate = async (authorization: string | undefined): Promise<string | undefined> => {
  if (pool === undefined || authorization === undefined || !authorization.startsWith("Bearer ")) return undefined
  const key = authorization.slice(7)
  if (!keyFormat.test(key)) return undefined
  const hash = createHash("sha256").update(key).digest("hex")
  const cached = keyCache.get(hash)
  if (cached !== undefined && cached.until > Date.now()) return cached.tenantId
  const result = await pool.query<{ tenant_id: string }>(
    "SELECT tenant_id FROM api_keys WHERE key_hash = decode($1, 'hex') AND revoked_at IS NULL",
    [hash]
  )
  const tenantId = result.rows[0]?.tenant_id
  keyCache.set(hash, { tenantId, until: Date.now() + 5000 })
  return tenantId
}

interface EventRow {
  readonly id: string
  readonly type: string
  readonly data: unknown
  readonly occurred_at: Date
  readonly created_at: Date
}

/** `GET /v1/events?limit=` for a tenant: the query and the page shape of codex-api. */
export const listEvents = async (tenantId: string, limitParam: unknown) => {
  if (pool === undefined) throw new Error("no DATABASE_URL")
  const limit = Math.min(100, Math.max(1, Number(limitParam ?? 50) || 50))
  const result = await pool.query<EventRow>(
    "SELECT id, type, data, occurred_at, created_at FROM events WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2",
    [tenantId, limit + 1]
  )
  const items = result.rows.slice(0, limit).map((row) => ({
    id: row.id,
    type: row.type,
    data: row.data,
    occurredAt: row.occurred_at.toISOString(),
    createdAt: row.created_at.toISOString()
  }))
  return { data: items, nextCursor: result.rows.length > limit ? (items.at(-1)?.id ?? null) : null }
}

export const unauthorized = {
  type: "about:blank",
  title: "Unauthorized",
  status: 401,
  detail: "A valid API key is required."
}

export const listening = (actual: number) => console.log(JSON.stringify({ message: "listening", port: actual }))
