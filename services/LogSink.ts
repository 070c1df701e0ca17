import { Context } from "effect"

/**
 * Where formatted log lines go. The live sink buffers and writes in batches (a synchronous console write per line
 * is the costliest part of logging); the test sink keeps the lines so tests can read what was logged.
 */
export interface LogSinkShape {
  readonly write: (line: string) => void
  /** Everything written so far has reached its destination. */
  readonly flush: () => void
}

export class LogSink extends Context.Service<LogSink, LogSinkShape>()("codex/LogSink") {}
