/** Helpers for tests that read the server's telemetry (start it with `startTestServer` and its `metrics`/`tracing`). */

/** The JSON log lines, parsed. */
export const parsedLogs = (lines: ReadonlyArray<string>): ReadonlyArray<Record<string, unknown>> =>
  lines.map((line) => JSON.parse(line) as Record<string, unknown>)
