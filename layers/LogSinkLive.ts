import { writeSync } from "node:fs"
import { Effect, Layer } from "effect"
import { LogSink, type LogSinkShape } from "../services/LogSink.ts"

/** Above this many buffered bytes a write is flushed at once rather than on the next tick. */
const highWaterMark = 64 * 1024

/**
 * Buffers lines and hands them to stdout in one write per event-loop turn. On process exit (including
 * `process.exit` after a signal) the rest is written synchronously, so the last lines of a shutdown are never lost.
 */
export const makeStdoutSink = (fd = 1): LogSinkShape => {
  let buffer: Array<string> = []
  let bytes = 0
  let scheduled = false

  const flush = () => {
    scheduled = false
    if (buffer.length === 0) return
    const chunk = buffer.join("")
    buffer = []
    bytes = 0
    try {
      writeSync(fd, chunk)
    } catch {
      // stdout closed (EPIPE): there is nowhere left to log to.
    }
  }

  const write = (line: string) => {
    buffer.push(line, "\n")
    bytes += line.length + 1
    if (bytes >= highWaterMark) flush()
    else if (!scheduled) {
      scheduled = true
      setImmediate(flush)
    }
  }

  return { write, flush }
}

export const LogSinkStdout: Layer.Layer<LogSink> = Layer.effect(
  LogSink,
  Effect.acquireRelease(
    Effect.sync(() => {
      const sink = makeStdoutSink()
      process.on("exit", sink.flush)
      return sink
    }),
    (sink) =>
      Effect.sync(() => {
        process.off("exit", sink.flush)
        sink.flush()
      })
  )
)

/** Keeps every line in memory; `lines` is the array itself, so tests read what has been logged so far. */
export const makeMemorySink = (): LogSinkShape & { readonly lines: Array<string> } => {
  const lines: Array<string> = []
  return { lines, write: (line) => lines.push(line), flush: () => {} }
}
