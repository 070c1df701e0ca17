import { Duration, Effect, Layer } from "effect"
import { AppConfig } from "../services/AppConfig.ts"
import { Readiness } from "../services/Readiness.ts"

/**
 * The first step of shutdown. Acquired after the HTTP server, so its finalizer runs before the listener closes:
 * readiness flips to 503 at once (load balancers stop routing here), then the server keeps serving for
 * `SHUTDOWN_DELAY`, answering with `Connection: close`. Only then does the listener close (NodeHttpServer's own
 * finalizer), followed by the connection deadline (HttpServerLive) and the database pool.
 */
export const GracefulShutdown: Layer.Layer<never, never, AppConfig | Readiness> = Layer.effectDiscard(
  Effect.gen(function* () {
    const config = yield* AppConfig
    const readiness = yield* Readiness
    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        yield* readiness.beginDraining
        yield* Effect.logInfo("shutdown: draining, readiness now reports 503").pipe(
          Effect.annotateLogs({
            shutdownDelayMs: Duration.toMillis(config.shutdownDelay),
            shutdownTimeoutMs: Duration.toMillis(config.shutdownTimeout)
          })
        )
        yield* Effect.sleep(config.shutdownDelay)
        yield* Effect.logInfo("shutdown: closing the listener; waiting for in-flight requests")
      })
    )
  })
)

/**
 * A second SIGTERM/SIGINT during shutdown means "stop now": exit at once with code 1. Installed when draining starts,
 * as the runtime's own handler only interrupts (which is already under way).
 */
export const ExitOnSecondSignal: Layer.Layer<never> = Layer.effectDiscard(
  Effect.addFinalizer(() =>
    Effect.sync(() => {
      const exitNow = () => process.exit(1)
      process.once("SIGTERM", exitNow)
      process.once("SIGINT", exitNow)
    })
  )
)

/**
 * Brackets the database: built right after the pool and torn down right before it, so the log shows the pool
 * closing as the last step of shutdown.
 */
export const DatabaseShutdownLog: Layer.Layer<never> = Layer.effectDiscard(
  Effect.addFinalizer(() => Effect.logInfo("shutdown: closing the database pool; shutdown complete"))
)
