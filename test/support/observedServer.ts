/** Helpers for tests that read the server's telemetry (start it with `startTestServer` and its `metrics`/`tracing`). */
import { Effect } from "effect"

/** The JSON log lines, parsed. */
export const parsedLogs = (lines: ReadonlyArray<string>): ReadonlyArray<Record<string, unknown>> =>
  lines.map((line) => JSON.parse(line) as Record<string, unknown>)

/** Polls `read` until `done` holds or the deadline passes; returns the last value read. */
export const pollUntil = <A>(read: () => A, done: (a: A) => boolean, deadlineMs = 10_000): Effect.Effect<A> =>
  Effect.gen(function* () {
    const until = Date.now() + deadlineMs
    let value = read()
    while (!done(value) && Date.now() < until) {
      yield* Effect.sleep("20 millis")
      value = read()
    }
    return value
  })
