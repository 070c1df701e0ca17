import type { LogLevel } from "effect"

/**
 * `new Date().toISOString()` for the access line, formatted at most once per millisecond: under load many requests
 * finish within one, and formatting the date was a third of the line's cost.
 */
let isoMillis = Number.NaN
let isoText = ""
const nowIso = (): string => {
  const now = Date.now()
  if (now !== isoMillis) {
    isoMillis = now
    isoText = new Date(now).toISOString()
  }
  return isoText
}

/** The fields of an access line, beside `time`, `level` and `message`. */
export interface AccessFields {
  readonly requestId: string
  readonly method: string
  readonly route: string
  readonly path: string
  readonly status: number
  readonly durationMs: number
  readonly tenantId?: string | undefined
  /** True when the admin token acted as `tenantId` (`Codex-Tenant`); absent otherwise. */
  readonly operator?: true | undefined
  readonly traceId?: string | undefined
  readonly spanId?: string | undefined
  readonly clientIp?: string | undefined
  readonly userAgent?: string | undefined
}

/**
 * The access line, in the JSON shape of the other log lines (`jsonLogger`, layers/LoggerLive.ts), built directly:
 * going through Effect's logger (annotations, fiber refs, a log entry per request) halved the throughput of a cheap
 * route in bench/observability.ts. Undefined fields are left out by JSON.stringify.
 */
export const accessLine = (level: LogLevel.LogLevel, fields: AccessFields): string =>
  JSON.stringify({
    time: nowIso(),
    level: level.toLowerCase(),
    message: "request",
    requestId: fields.requestId,
    method: fields.method,
    route: fields.route,
    path: fields.path,
    status: fields.status,
    durationMs: fields.durationMs,
    tenantId: fields.tenantId,
    operator: fields.operator,
    traceId: fields.traceId,
    spanId: fields.spanId,
    clientIp: fields.clientIp,
    userAgent: fields.userAgent
  })
