import { Cause, Effect, Layer, Logger, References } from "effect"
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

/** Replaces Effect's default logger: JSON lines (buffered) or, in development, Effect's pretty console logger. */
export const LoggerLive: Layer.Layer<never, never, AppConfig | LogSink> = Layer.unwrap(
  Effect.gen(function* () {
    const config = yield* AppConfig
    const sink = yield* LogSink
    const logger = config.logFormat === "json" ? jsonLogger(sink) : Logger.consolePretty()
    return Layer.merge(Logger.layer([logger]), Layer.succeed(References.MinimumLogLevel, config.logLevel))
  })
)
