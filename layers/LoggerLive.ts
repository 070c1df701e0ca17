import { Cause, Effect, Layer, Logger, type LogLevel, References } from "effect"
import { AppConfig } from "../services/AppConfig.ts"
import { LogSink, type LogSinkShape } from "../services/LogSink.ts"

const messageText = (message: unknown): string => {
  const parts = Array.isArray(message) ? message : [message]
  return parts.map((part) => (typeof part === "string" ? part : JSON.stringify(part))).join(" ")
}

/**
 * One JSON object per line: `time`, `level`, `message`, then the log annotations (request id, tenant id, ...),
 * `traceId`/`spanId` of the current span, and `error` (the pretty cause, with stack) when the entry carries one.
 */
export const jsonLogger = (sink: LogSinkShape): Logger.Logger<unknown, void> =>
  Logger.make(({ cause, date, fiber, logLevel, message }) => {
    const entry: Record<string, unknown> = {
      time: date.toISOString(),
      level: logLevel.toLowerCase(),
      message: messageText(message)
    }
    for (const [key, value] of Object.entries(fiber.getRef(References.CurrentLogAnnotations))) {
      if (!(key in entry)) entry[key] = value
    }
    const span = fiber.cache.span
    if (span !== undefined) {
      entry.traceId = span.traceId
      entry.spanId = span.spanId
    }
    if (cause.reasons.length > 0) entry.error = Cause.pretty(cause)
    sink.write(JSON.stringify(entry))
  })

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
  readonly traceId?: string | undefined
  readonly spanId?: string | undefined
  readonly clientIp?: string | undefined
  readonly userAgent?: string | undefined
}

/**
 * The access line in the same JSON shape as `jsonLogger`'s lines, built directly: going through Effect's logger
 * (annotations, fiber refs, a log entry per request) halved the throughput of a cheap route in bench/observability.ts.
 * Undefined fields are left out by JSON.stringify.
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
    traceId: fields.traceId,
    spanId: fields.spanId,
    clientIp: fields.clientIp,
    userAgent: fields.userAgent
  })

/** Replaces Effect's default logger: JSON lines (buffered) or, in development, Effect's pretty console logger. */
export const LoggerLive: Layer.Layer<never, never, AppConfig | LogSink> = Layer.unwrap(
  Effect.gen(function* () {
    const config = yield* AppConfig
    const sink = yield* LogSink
    const logger = config.logFormat === "json" ? jsonLogger(sink) : Logger.consolePretty()
    return Layer.merge(Logger.layer([logger]), Layer.succeed(References.MinimumLogLevel, config.logLevel))
  })
)
