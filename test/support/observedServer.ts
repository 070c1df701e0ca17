/** Helpers for tests that read the server's telemetry (start it with `startTestServer` and its `metrics`/`tracing`). */
import { Effect } from "effect"

/** The JSON log lines, parsed. */
export const parsedLogs = (lines: ReadonlyArray<string>): ReadonlyArray<Record<string, unknown>> =>
  lines.map((line) => JSON.parse(line) as Record<string, unknown>)

/**
 * Polls `read` every 20 ms until `done` holds; returns that value. Fails the test (a defect) when the deadline passes
 * first: a poll that gave up quietly would let the assertions after it pass on nothing (a broken export, say).
 */
export const pollUntil = <A>(read: () => A, done: (a: A) => boolean, deadlineMs = 10_000): Effect.Effect<A> =>
  Effect.gen(function* () {
    const until = Date.now() + deadlineMs
    let value = read()
    while (!done(value)) {
      if (Date.now() >= until) {
        const last = JSON.stringify(value)?.slice(0, 300) ?? String(value)
        return yield* Effect.die(new Error(`pollUntil: timed out after ${deadlineMs} ms; the last value read: ${last}`))
      }
      yield* Effect.sleep("20 millis")
      value = read()
    }
    return value
  })
