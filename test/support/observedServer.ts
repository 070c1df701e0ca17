import { Context, Effect, Exit, Layer, Option, Redacted, Scope } from "effect"
import { type HttpRouter, HttpServer } from "effect/http"
import type * as OtlpExporter from "effect/observability/OtlpExporter"
import { appConfigTest } from "../../layers/AppConfigLive.ts"
import { LoggerLive } from "../../layers/LoggerLive.ts"
import { makeMemorySink } from "../../layers/LogSinkLive.ts"
import type { AppConfig, AppConfigShape } from "../../services/AppConfig.ts"
import { LogSink } from "../../services/LogSink.ts"
import type { Metrics } from "../../services/Metrics.ts"
import { makeServer } from "../../src/App.ts"
import { TestDatabase } from "./testDatabase.ts"
import { TestServer } from "./testServer.ts"

export interface ObservedServerOptions {
  readonly config?: Partial<AppConfigShape>
  readonly extraRoutes?: Layer.Layer<never, never, HttpRouter.HttpRouter>
  /** Replaces the metrics registry (e.g. a MetricsTest registry the test reads directly). */
  readonly metrics?: Layer.Layer<Metrics>
  /** Replaces the tracing layer (e.g. the SDK with an in-memory exporter). */
  readonly tracing?: Layer.Layer<OtlpExporter.Flusher, never, AppConfig>
}

/** `makeTestServer` with the telemetry layers replaceable: the production composition otherwise. */
export const makeObservedServer = (
  options: ObservedServerOptions = {}
): Layer.Layer<TestServer, unknown, TestDatabase> =>
  Layer.unwrap(
    Effect.gen(function* () {
      const database = yield* TestDatabase
      const sink = makeMemorySink()
      const config = appConfigTest({
        databaseUrl: Option.map(database.url, (url) => Redacted.make(url)),
        ...options.config
      })
      const foundation = LoggerLive.pipe(Layer.provideMerge(Layer.merge(config, Layer.succeed(LogSink, sink))))
      const serverOptions = {
        ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
        ...(options.tracing === undefined ? {} : { tracing: options.tracing })
      }
      const server = makeServer(options.extraRoutes, serverOptions).pipe(Layer.provide(foundation))
      const exposed = Layer.effect(
        TestServer,
        Effect.gen(function* () {
          const http = yield* HttpServer.HttpServer
          const address = http.address
          const port = address._tag === "UnixPathAddress" ? 0 : address.port
          return { baseUrl: `http://127.0.0.1:${port}`, logs: sink.lines }
        })
      )
      return exposed.pipe(Layer.provide(server))
    })
  )

/** The server built into a scope of its own; `shutdown` is what SIGTERM does (drain, then flush telemetry). */
export const startObservedServer = (options: ObservedServerOptions = {}) =>
  Effect.gen(function* () {
    const scope = yield* Effect.acquireRelease(Scope.make(), (scope) => Scope.close(scope, Exit.void))
    const context = yield* Layer.buildWithScope(makeObservedServer(options), scope)
    return { ...Context.get(context, TestServer), shutdown: Scope.close(scope, Exit.interrupt()) }
  })

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
