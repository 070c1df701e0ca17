import { type Config, Effect, Layer } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import * as NetAddress from "effect/net/NetAddress"
import { AppConfigLive } from "../layers/AppConfigLive.ts"
import { DatabaseLive } from "../layers/Database.ts"
import { DatabaseHealthLive } from "../layers/DatabaseHealthLive.ts"
import {
  DatabaseShutdownLog,
  ExitAfterShutdownTimeout,
  ExitOnSecondSignal,
  GracefulShutdown
} from "../layers/GracefulShutdown.ts"
import { HttpServerLive } from "../layers/HttpServerLive.ts"
import { LoggerLive } from "../layers/LoggerLive.ts"
import { LogSinkStdout } from "../layers/LogSinkLive.ts"
import { MigrationsLive } from "../layers/Migrations.ts"
import { ReadinessLive } from "../layers/ReadinessLive.ts"
import type { AppConfig } from "../services/AppConfig.ts"
import type { LogSink } from "../services/LogSink.ts"
import { Routes } from "./http/Routes.ts"
import { DemoSeedLive } from "./seed/DemoSeed.ts"

/**
 * Logged once the routes are mounted, i.e. when the server answers requests. With `PORT=0` this line is the only
 * place the bound port shows up.
 */
const ListeningLog: Layer.Layer<never, never, HttpServer.HttpServer> = Layer.effectDiscard(
  Effect.gen(function* () {
    const { address } = yield* HttpServer.HttpServer
    const where = NetAddress.isUnixPathAddress(address)
      ? { path: address.path }
      : { host: NetAddress.formatIp(address.address), port: address.port }
    yield* Effect.logInfo("listening").pipe(Effect.annotateLogs(where))
  })
)

/**
 * The server, given its configuration and log sink. Layers are built bottom-up and torn down in reverse: database →
 * migrations and seed → HTTP listener → draining. So on shutdown readiness flips first, then the listener closes and
 * in-flight requests finish, then leftover connections are cut, and the database pool closes last.
 *
 * `extraRoutes` lets tests mount routes of their own (a slow handler, say) on the real server.
 */
export const makeServer = <E = never, R = never>(
  extraRoutes: Layer.Layer<never, E, R> = Layer.empty as Layer.Layer<never, E, R>
) => {
  // Migrations finish before anything else touches the database.
  const MigratedDatabase = MigrationsLive.pipe(Layer.provideMerge(DatabaseLive))
  const Database = Layer.mergeAll(DatabaseHealthLive, DemoSeedLive, DatabaseShutdownLog).pipe(
    Layer.provideMerge(MigratedDatabase)
  )
  const Http = HttpRouter.serve(Layer.mergeAll(Routes, extraRoutes), {
    disableLogger: true,
    disableListenLog: true
  }).pipe(Layer.provideMerge(HttpServerLive))
  return Layer.merge(GracefulShutdown, ListeningLog).pipe(
    Layer.provideMerge(Http),
    Layer.provide(Database),
    Layer.provide(ReadinessLive)
  )
}

/** Config and logging, shared by every entry point. */
export const Foundation: Layer.Layer<AppConfig | LogSink, Config.ConfigError> = LoggerLive.pipe(
  Layer.provideMerge(Layer.merge(AppConfigLive, LogSinkStdout))
)

/**
 * The process: the server, plus what only a real process does on shutdown (exit at once on a second signal, and
 * exit anyway when the shutdown overruns its deadline). `extraRoutes` is for test entry points.
 */
export const makeMain = <E = never, R = never>(
  extraRoutes: Layer.Layer<never, E, R> = Layer.empty as Layer.Layer<never, E, R>
) =>
  Layer.mergeAll(makeServer(extraRoutes), ExitOnSecondSignal, ExitAfterShutdownTimeout).pipe(Layer.provide(Foundation))

export const Main = makeMain()
