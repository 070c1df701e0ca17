/** Helpers for tests that read the server's telemetry (start it with `startTestServer` and its `metrics`/`tracing`). */
import { Effect } from "effect"
import { TestServer } from "./testServer.ts"

/** The JSON log lines, parsed. */
export const parsedLogs = (lines: ReadonlyArray<string>): ReadonlyArray<Record<string, unknown>> =>
  lines.map((line) => JSON.parse(line) as Record<string, unknown>)

/** How many lines the test server has logged so far: a mark for `logsSince`. */
export const logMark: Effect.Effect<number, never, TestServer> = Effect.map(TestServer, ({ logs }) => logs.length)

/** The test server's log entries from index `from` (a `logMark`) on, parsed. */
export const logsSince = (from: number): Effect.Effect<ReadonlyArray<Record<string, unknown>>, never, TestServer> =>
  Effect.map(TestServer, ({ logs }) => parsedLogs(logs.slice(from)))
