/**
 * Cost of one log line: `Effect.logInfo` with two annotations through our JSON logger and buffered stdout sink,
 * beside Effect's own `Logger.consoleJson` (one synchronous console write per line) and a logger that drops
 * everything (the price of `Effect.log` itself). Output goes to /dev/null; results to stderr.
 *
 *   npm run bench:log
 */
import { openSync } from "node:fs"
import { Effect, Logger } from "effect"
import { jsonLogger } from "../layers/LoggerLive.ts"
import { makeStdoutSink } from "../layers/LogSinkLive.ts"

const lines = 200_000
const rounds = 5

const devNull = openSync("/dev/null", "w")
const sink = makeStdoutSink(devNull)

const program = Effect.gen(function* () {
  for (let i = 0; i < lines; i++) {
    yield* Effect.logInfo("request finished").pipe(Effect.annotateLogs({ requestId: "req-123", status: 200 }))
  }
})

const measure = (name: string, logger: Logger.Logger<unknown, unknown>) => {
  const samples: Array<number> = []
  for (let round = 0; round < rounds; round++) {
    const start = process.hrtime.bigint()
    Effect.runSync(program.pipe(Effect.provide(Logger.layer([logger]))))
    sink.flush()
    samples.push(Number(process.hrtime.bigint() - start) / lines)
  }
  samples.sort((a, b) => a - b)
  return { name, nsPerLine: Math.round(samples[Math.floor(rounds / 2)] ?? 0) }
}

// consoleJson writes through console.log: point stdout at /dev/null by running with `> /dev/null`.
const results = [
  measure(
    "no-op logger (Effect.log itself)",
    Logger.make(() => {})
  ),
  measure("codex jsonLogger + buffered sink", jsonLogger(sink)),
  measure("Effect Logger.consoleJson", Logger.consoleJson)
]
for (const r of results) process.stderr.write(`${r.name.padEnd(36)} ${String(r.nsPerLine).padStart(6)} ns/line\n`)
