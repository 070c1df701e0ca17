import { assert, describe, it, layer } from "@effect/vitest"
import { Duration, Effect, Option } from "effect"
import { parseDurationText } from "../src/domain/DurationText.ts"
import { describeStartupFailure } from "../src/StartupError.ts"
import { appProcess } from "./support/apps.ts"
import { parseRecording, reveal } from "./support/defaultConfig.ts"
import { isDefined, pollPromise } from "./support/poll.ts"
import { TestDatabase, TestDatabaseLive } from "./support/testDatabase.ts"

/**
 * Issue 15, item 7: every duration setting takes the shorthand operators write everywhere else (`30s`, `500ms`, `5m`,
 * `1h`, `2d`, `1m30s`) as well as Effect's `30 seconds`, and a bad value still stops startup with one line.
 */

describe("parseDurationText", () => {
  const accepted: ReadonlyArray<readonly [text: string, millis: number]> = [
    ["0", 0],
    ["0s", 0],
    ["500ms", 500],
    ["30s", 30_000],
    ["5m", 300_000],
    ["1h", 3_600_000],
    ["2d", 172_800_000],
    ["1w", 604_800_000],
    ["1m30s", 90_000],
    ["1h30m", 5_400_000],
    ["1h 30m 15s", 5_415_000],
    ["1.5s", 1500],
    ["0.5h", 1_800_000],
    ["10 s", 10_000],
    ["  45s  ", 45_000],
    ["250 milliseconds", 250],
    ["1 minute 30 seconds", 90_000],
    ["-5s", -5000],
    // Effect's forms, as before.
    ["30 seconds", 30_000],
    ["500 millis", 500],
    ["1 second", 1000],
    ["2 minutes", 120_000],
    ["1.5 minutes", 90_000],
    ["1 hour", 3_600_000],
    ["3 days", 259_200_000],
    ["-1 seconds", -1000]
  ]
  for (const [text, millis] of accepted) {
    it(`${JSON.stringify(text)} = ${millis} ms`, () => {
      const duration = parseDurationText(text)
      assert.isDefined(duration)
      if (duration !== undefined) assert.strictEqual(Duration.toMillis(duration), millis)
    })
  }

  it("Effect's finer units still read", () => {
    const micros = parseDurationText("1500 micros")
    const nanos = parseDurationText("10 nanos")
    assert.isTrue(micros !== undefined && Duration.equals(micros, Duration.micros(1500n)))
    assert.isTrue(nanos !== undefined && Duration.equals(nanos, Duration.nanos(10n)))
  })

  it("Infinity reads (the settings' own checks refuse it)", () => {
    const infinity = parseDurationText("Infinity")
    assert.isTrue(infinity !== undefined && !Duration.isFinite(infinity))
  })

  // A bare number has no unit; `M` could be months; a trailing number without its unit is an unfinished value.
  const refused = ["", " ", "10", "1.", ".5s", "soon", "5M", "30S", "1h30", "s", "30 parsecs", "1h-30m", "--5s"]
  for (const text of [...refused, "constructor", "5 toString", "1e3s", "0x10s"]) {
    it(`${JSON.stringify(text)} is refused`, () => {
      assert.isUndefined(parseDurationText(text))
    })
  }
})

const render = (config: unknown): string => JSON.stringify(reveal(config))

/** The configuration with one variable set, rendered; undefined when it does not parse. */
const renderedWith = (name: string, text: string): string | undefined => {
  const { result } = parseRecording({ [name]: text })
  return result._tag === "Success" ? render(result.success) : undefined
}

/** Values tried on each variable: one of them fits each setting's own limits (a request timeout ≥ 20 s, ...). */
const candidateSeconds = [2, 22, 120]

/**
 * The duration settings, found by behaviour rather than listed: a variable is one when `N seconds` and `N000 millis`
 * give the same configuration and `N+1 seconds` another, for one of the candidate values (any other kind of variable
 * refuses them, keeps the texts apart, or ignores them). Each comes with the N that fits it.
 */
const durationVariables = (): ReadonlyMap<string, number> => {
  const { read } = parseRecording({})
  const found = new Map<string, number>()
  for (const name of read) {
    const seconds = candidateSeconds.find((n) => {
      const rendered = renderedWith(name, `${n} seconds`)
      return (
        rendered !== undefined &&
        rendered === renderedWith(name, `${n * 1000} millis`) &&
        rendered !== renderedWith(name, `${n + 1} seconds`)
      )
    })
    if (seconds !== undefined) found.set(name, seconds)
  }
  return found
}

describe("every duration setting", () => {
  const variables = durationVariables()

  it("is found: the known ones at least", () => {
    for (const name of [
      "SHUTDOWN_TIMEOUT",
      "SHUTDOWN_DELAY",
      "HTTP_HEADERS_TIMEOUT",
      "HTTP_REQUEST_TIMEOUT",
      "HTTP_KEEP_ALIVE_TIMEOUT",
      "DELIVERY_TIMEOUT",
      "DELIVERY_BACKOFF_BASE",
      "DELIVERY_BACKOFF_MAX",
      "DELIVERY_POLL_INTERVAL",
      "BREAKER_OPEN_BASE",
      "BREAKER_OPEN_MAX",
      "IDEMPOTENCY_TTL",
      "IDEMPOTENCY_LOCK_TIMEOUT",
      "RATE_LIMIT_WINDOW"
    ]) {
      assert.isTrue(variables.has(name), name)
    }
  })

  for (const [name, seconds] of variables) {
    const forms = [`${seconds}s`, `${seconds * 1000}ms`, `0m${seconds}s`]
    it(`${name} takes ${forms.join(", ")} for ${seconds} seconds, and refuses "2 parsecs" with one line`, () => {
      const expected = renderedWith(name, `${seconds} seconds`)
      for (const text of forms) {
        const { result } = parseRecording({ [name]: text })
        if (result._tag === "Failure") assert.fail(`${name}=${text}: ${describeStartupFailure(result.failure)}`)
        else assert.strictEqual(render(result.success), expected, `${name}=${text}`)
      }
      const bad = parseRecording({ [name]: "2 parsecs" }).result
      assert.strictEqual(bad._tag, "Failure")
      if (bad._tag === "Failure") {
        assert.strictEqual(
          describeStartupFailure(bad.failure),
          `invalid configuration: ${name}: expected a duration such as 30s, 500ms, 5m, 1h30m or 30 seconds (not "2 parsecs")`
        )
      }
    })
  }

  it("SHUTDOWN_DELAY=0s, the value that used to stop the server, is zero", () => {
    const { result } = parseRecording({ SHUTDOWN_DELAY: "0s" })
    assert.strictEqual(result._tag, "Success")
    if (result._tag === "Success") assert.isTrue(Duration.isZero(result.success.shutdownDelay))
  })
})

layer(TestDatabaseLive)("a server process configured with shorthand durations", (it) => {
  it.effect(
    "starts, and its shutdown runs on the values it was given",
    () =>
      Effect.gen(function* () {
        const database = yield* TestDatabase
        // On PGlite (no server reachable) the process embeds its own in-memory database.
        const url = Option.getOrElse(database.url, () => "")
        const app = yield* appProcess(url, {
          PGLITE_DIR: "memory://",
          SHUTDOWN_DELAY: "0s",
          SHUTDOWN_TIMEOUT: "1m30s",
          HTTP_HEADERS_TIMEOUT: "10s",
          HTTP_REQUEST_TIMEOUT: "1m",
          HTTP_KEEP_ALIVE_TIMEOUT: "65s",
          DELIVERY_TIMEOUT: "500ms",
          RATE_LIMIT_WINDOW: "1h",
          IDEMPOTENCY_TTL: "1d"
        })
        const livez = yield* Effect.promise(() => fetch(`${app.ready}/livez`))
        assert.strictEqual(livez.status, 200)
        const policy = yield* Effect.promise(() => fetch(`${app.ready}/docs`).then((r) => r.headers))
        assert.match(policy.get("ratelimit-policy") ?? "", /;w=3600$/, "RATE_LIMIT_WINDOW=1h")
        app.child.kill("SIGTERM")
        const exit = yield* Effect.promise(() => app.exited)
        assert.strictEqual(exit.code, 0)
        const draining = yield* Effect.promise(() =>
          pollPromise(
            "the draining line",
            async () => app.logs().find((entry) => entry.message === "shutdown: draining, readiness now reports 503"),
            isDefined,
            { timeoutMs: 5000 }
          )
        )
        assert.strictEqual(draining.shutdownDelayMs, 0)
        assert.strictEqual(draining.shutdownTimeoutMs, 90_000)
      }).pipe(Effect.scoped),
    60_000
  )
})
