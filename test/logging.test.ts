import { closeSync, mkdtempSync, openSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Console, Effect, Layer, Logger, Option, Redacted } from "effect"
import { vi } from "vitest"
import { jsonLogger, LoggerLive } from "../layers/LoggerLive.ts"
import { makeMemorySink, makeStdoutSink } from "../layers/LogSinkLive.ts"
import { LogSink } from "../services/LogSink.ts"
import { appConfigTest } from "./support/appConfig.ts"
import { poll } from "./support/poll.ts"
import { TestDatabaseLive } from "./support/testDatabase.ts"
import { startTestServer } from "./support/testServer.ts"

const parse = (line: string | undefined): Record<string, unknown> => {
  assert.isDefined(line)
  return JSON.parse(line ?? "") as Record<string, unknown>
}

describe("JSON logger", () => {
  it.effect("writes one object per line with time, level, message and the annotations", () =>
    Effect.gen(function* () {
      const sink = makeMemorySink()
      yield* Effect.logInfo("tenant created").pipe(
        Effect.annotateLogs({ requestId: "req-1", tenantId: "ten_1" }),
        Effect.provide(Logger.layer([jsonLogger(sink)]))
      )
      assert.strictEqual(sink.lines.length, 1)
      const entry = parse(sink.lines[0])
      assert.strictEqual(entry.level, "info")
      assert.strictEqual(entry.message, "tenant created")
      assert.strictEqual(entry.requestId, "req-1")
      assert.strictEqual(entry.tenantId, "ten_1")
      assert.match(String(entry.time), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/)
      assert.notProperty(entry, "error")
      assert.notInclude(sink.lines[0] ?? "", "\n")
    })
  )

  it.effect("carries the trace and span ids of the current span", () =>
    Effect.gen(function* () {
      const sink = makeMemorySink()
      const span = yield* Effect.logInfo("inside").pipe(
        Effect.andThen(Effect.currentSpan),
        Effect.withSpan("work"),
        Effect.provide(Logger.layer([jsonLogger(sink)]))
      )
      const entry = parse(sink.lines[0])
      assert.strictEqual(entry.traceId, span.traceId)
      assert.strictEqual(entry.spanId, span.spanId)
    })
  )

  it.effect("puts the failure with its stack under `error`, and never a redacted secret", () =>
    Effect.gen(function* () {
      const sink = makeMemorySink()
      const secret = Redacted.make("ck_super-secret-value")
      yield* Effect.die(new Error("boom")).pipe(
        Effect.catchCause((cause) => Effect.logError("request failed", cause)),
        Effect.annotateLogs({ apiKey: secret }),
        Effect.provide(Logger.layer([jsonLogger(sink)]))
      )
      const entry = parse(sink.lines[0])
      assert.strictEqual(entry.level, "error")
      assert.include(String(entry.error), "boom")
      assert.include(String(entry.error), "logging.test.ts")
      assert.notInclude(sink.lines[0] ?? "", "super-secret")
    })
  )
})

describe("LoggerLive", () => {
  const withConfig = (overrides: Parameters<typeof appConfigTest>[0], sink: ReturnType<typeof makeMemorySink>) =>
    LoggerLive.pipe(Layer.provide(Layer.merge(appConfigTest(overrides), Layer.succeed(LogSink, sink))))

  it.effect("drops entries below LOG_LEVEL", () =>
    Effect.gen(function* () {
      const sink = makeMemorySink()
      yield* Effect.gen(function* () {
        yield* Effect.logDebug("hidden")
        yield* Effect.logInfo("hidden too")
        yield* Effect.logWarning("shown")
      }).pipe(Effect.provide(withConfig({ logLevel: "Warn", logFormat: "json" }, sink)))
      assert.deepStrictEqual(
        sink.lines.map((line) => parse(line).message),
        ["shown"]
      )
    })
  )

  it.effect("the pretty format writes to the console, not JSON lines to the sink", () =>
    Effect.gen(function* () {
      const sink = makeMemorySink()
      // The console the pretty logger writes to, captured: a test that saw nothing logged anywhere must fail.
      const printed: Array<string> = []
      const capture = (...args: ReadonlyArray<unknown>) => {
        printed.push(args.map(String).join(" "))
      }
      const testConsole: Console.Console = { ...globalThis.console, log: capture, info: capture, error: capture }
      yield* Effect.logInfo("pretty line").pipe(
        Effect.provide(withConfig({ logFormat: "pretty", databaseUrl: Option.none() }, sink)),
        Effect.provide(Logger.layer([])),
        Effect.provideService(Console.Console, testConsole)
      )
      assert.strictEqual(sink.lines.length, 0)
      assert.lengthOf(printed, 1, printed.join("\n"))
      assert.include(printed[0] ?? "", "pretty line")
      assert.isFalse((printed[0] ?? "").trimStart().startsWith("{"), "a pretty line, not JSON")
    })
  )
})

describe("the access line with LOG_FORMAT=pretty", () => {
  it.live("goes to the console as a pretty `request` line with the request id, not to the JSON sink", () =>
    Effect.gen(function* () {
      // The pretty logger writes through the global console: capture what it prints (nothing printed fails).
      const printed: Array<string> = []
      const capture = (...args: ReadonlyArray<unknown>) => {
        printed.push(args.map(String).join(" "))
      }
      const spies = (["log", "info", "warn", "error", "debug"] as const).map((method) =>
        vi.spyOn(console, method).mockImplementation(capture)
      )
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          for (const spy of spies) spy.mockRestore()
        })
      )
      const server = yield* startTestServer({ config: { logFormat: "pretty" } })
      const response = yield* Effect.promise(() =>
        fetch(`${server.baseUrl}/no/such/route`, { headers: { "x-request-id": "pretty-access-1" } })
      )
      assert.strictEqual(response.status, 404)
      // The pretty logger prints the message, then one console line per annotation.
      const output = yield* poll(
        "the pretty access line on the console",
        Effect.sync(() => printed.join("\n")),
        (text) => text.includes("requestId: pretty-access-1")
      )
      assert.match(output, /\brequest\b/)
      assert.include(output, "status: 404")
      assert.include(output, "route: unmatched")
      assert.isFalse(output.trimStart().startsWith("{"), "pretty lines, not JSON")
      assert.isFalse(
        server.logs.some((entry) => entry.includes("pretty-access-1")),
        "the JSON sink stays out of the pretty format"
      )
    }).pipe(Effect.provide(TestDatabaseLive), Effect.scoped)
  )
})

describe("stdout sink", () => {
  it("batches lines and writes them all on flush, in order", () => {
    const file = join(mkdtempSync(join(tmpdir(), "codex-log-")), "out.log")
    const fd = openSync(file, "w")
    const sink = makeStdoutSink(fd)
    for (let i = 0; i < 3; i++) sink.write(`{"n":${i}}`)
    assert.strictEqual(readFileSync(file, "utf8"), "", "nothing is written before the batch is flushed")
    sink.flush()
    closeSync(fd)
    assert.deepStrictEqual(readFileSync(file, "utf8").trim().split("\n"), ['{"n":0}', '{"n":1}', '{"n":2}'])
  })
})
