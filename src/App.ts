import { type Config, Layer } from "effect"
import { HttpRouter } from "effect/http"
import { AppConfigLive } from "../layers/AppConfigLive.ts"
import { DatabaseLive } from "../layers/Database.ts"
import { DatabaseHealthLive } from "../layers/DatabaseHealthLive.ts"
import { DatabaseShutdownLog, ExitOnSecondSignal, GracefulShutdown } from "../layers/GracefulShutdown.ts"
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
  return GracefulShutdown.pipe(Layer.provideMerge(Http), Layer.provide(Database), Layer.provide(ReadinessLive))
}

/** Config and logging, shared by every entry point. */
export const Foundation: Layer.Layer<AppConfig | LogSink, Config.ConfigError> = LoggerLive.pipe(
  Layer.provideMerge(Layer.merge(AppConfigLive, LogSinkStdout))
)

export const Main = Layer.mergeAll(makeServer(), ExitOnSecondSignal).pipe(Layer.provide(Foundation))
