import { Context, Effect, Exit, Layer, Option, Random, Redacted, Scope } from "effect"
import { type HttpRouter, HttpServer } from "effect/http"
import { LoggerLive } from "../../layers/LoggerLive.ts"
import { makeMemorySink } from "../../layers/LogSinkLive.ts"
import type { AppConfigShape } from "../../services/AppConfig.ts"
import { LogSink } from "../../services/LogSink.ts"
import { makeServer, type ServerOptions } from "../../src/App.ts"
import { appConfigTest } from "./appConfig.ts"
import { TestDatabase, TestDatabaseLive } from "./testDatabase.ts"

export interface TestServerShape {
  /** `http://127.0.0.1:<port>` of the running server. */
  readonly baseUrl: string
  /** Every log line the server wrote so far (JSON lines). */
  readonly logs: ReadonlyArray<string>
}

export class TestServer extends Context.Service<TestServer, TestServerShape>()("test/TestServer") {}

/**
 * `metrics` and `tracing` replace the telemetry layers (a registry the test reads, an in-memory exporter); `urlPolicy`
 * the webhook URL policy (one on a scripted resolver).
 */
export interface TestServerOptions extends ServerOptions {
  readonly config?: Partial<AppConfigShape>
  /** Routes mounted beside the API, for behaviour only a test needs (a slow handler, say). */
  readonly extraRoutes?: Layer.Layer<never, never, HttpRouter.HttpRouter>
  /** The server's `Random` (the delivery worker's backoff jitter draws from it), so a test knows every delay. */
  readonly random?: Random.Random
}

/**
 * The real server, in this process, on an ephemeral port, against this file's database, logging JSON into memory.
 * Everything but the configuration source and the log destination is the production composition.
 */
export const makeTestServer = (options: TestServerOptions = {}): Layer.Layer<TestServer, unknown, TestDatabase> =>
  Layer.unwrap(
    Effect.gen(function* () {
      const database = yield* TestDatabase
      const sink = makeMemorySink()
      const config = appConfigTest({
        databaseUrl: Option.map(database.url, (url) => Redacted.make(url)),
        ...options.config
      })
      const foundation = LoggerLive.pipe(Layer.provideMerge(Layer.merge(config, Layer.succeed(LogSink, sink))))
      const serverOptions: ServerOptions = {
        ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
        ...(options.tracing === undefined ? {} : { tracing: options.tracing }),
        ...(options.urlPolicy === undefined ? {} : { urlPolicy: options.urlPolicy })
      }
      const built = makeServer(options.extraRoutes, serverOptions).pipe(Layer.provide(foundation))
      const server =
        options.random === undefined ? built : built.pipe(Layer.provide(Layer.succeed(Random.Random, options.random)))
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

/** The test server on a database of this file's own. */
export const testServer = (options: TestServerOptions = {}): Layer.Layer<TestServer | TestDatabase, unknown> =>
  makeTestServer(options).pipe(Layer.provideMerge(TestDatabaseLive))

export interface RunningTestServer extends TestServerShape {
  /**
   * What SIGTERM/SIGINT does in production: `runMain` interrupts the main fiber, which closes the scope the server
   * was built in. Completes once the whole shutdown (drain, connection deadline, database pool) is over.
   */
  readonly shutdown: Effect.Effect<void>
}

/**
 * The test server built into a scope of its own, so a test can shut it down (and watch it drain) while it keeps
 * running. The scope is also closed when the caller's scope ends, should the test never call `shutdown`.
 */
export const startTestServer = (
  options: TestServerOptions = {}
): Effect.Effect<RunningTestServer, unknown, TestDatabase | Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.acquireRelease(Scope.make(), (scope) => Scope.close(scope, Exit.void))
    const context = yield* Layer.buildWithScope(makeTestServer(options), scope)
    const server = Context.get(context, TestServer)
    return { ...server, shutdown: Scope.close(scope, Exit.interrupt()) }
  })
