import { Duration, Effect, Layer, type Scope } from "effect"
import { AppConfig } from "../services/AppConfig.ts"
import { ConnectionDeadline } from "../services/ConnectionDeadline.ts"
import { Readiness } from "../services/Readiness.ts"

/**
 * The first step of shutdown. Acquired after the HTTP server, so its finalizer runs before the listener closes:
 * readiness flips to 503 at once (load balancers stop routing here) and the connection deadline starts, then the
 * server keeps serving for `SHUTDOWN_DELAY`, answering with `Connection: close`. Only then does the listener close
 * (NodeHttpServer's own finalizer) and in-flight requests finish, until the deadline (`SHUTDOWN_TIMEOUT` after the
 * signal) closes whatever is left (HttpServerLive); the database pool closes last.
 */
export const GracefulShutdown: Layer.Layer<never, never, AppConfig | Readiness | ConnectionDeadline> =
  Layer.effectDiscard(
    Effect.gen(function* () {
      const config = yield* AppConfig
      const readiness = yield* Readiness
      const deadline = yield* ConnectionDeadline
      yield* Effect.addFinalizer(() =>
        Effect.gen(function* () {
          yield* readiness.beginDraining
          yield* deadline.start
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

const shutdownSignals = ["SIGTERM", "SIGINT"] as const

/**
 * Runs `onSignal` when the first SIGTERM/SIGINT arrives: the moment shutdown starts. Armed by a listener of its own
 * (the runtime's handler only interrupts the main fiber), not by a layer finalizer, because the order in which merged
 * layers are released is not the order shutdown needs. Disarmed when the layer is released without a signal.
 */
const onFirstSignal = (onSignal: (signal: NodeJS.Signals) => void): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      let fired = false
      const listener = (signal: NodeJS.Signals) => {
        if (fired) return
        fired = true
        for (const name of shutdownSignals) process.off(name, listener)
        onSignal(signal)
      }
      for (const name of shutdownSignals) process.on(name, listener)
      return listener
    }),
    (listener) =>
      Effect.sync(() => {
        for (const name of shutdownSignals) process.off(name, listener)
      })
  )

/**
 * A repeat of the first signal within this window is that signal delivered twice, not a second request: whoever
 * signals the whole process group (Ctrl-C in a terminal, systemd's default `KillMode=control-group`, pm2's tree kill)
 * reaches this process directly and again through `npm`, which forwards SIGTERM and SIGINT to its script's process.
 * npm's copy follows within milliseconds; a person pressing Ctrl-C again, or a supervisor escalating, comes later.
 */
export const duplicateSignalWindow = Duration.seconds(1)

/**
 * A second SIGTERM/SIGINT during shutdown means "stop now": exit at once with code 1. Armed by the first signal;
 * the runtime's own handler only interrupts (which is already under way). The first signal repeated within
 * `duplicateSignalWindow` is ignored (see there).
 */
export const ExitOnSecondSignal: Layer.Layer<never> = Layer.effectDiscard(
  Effect.gen(function* () {
    const context = yield* Effect.context<never>()
    const log = (effect: Effect.Effect<void>) => Effect.runSyncWith(context)(effect)
    yield* onFirstSignal((first) => {
      const firstAt = performance.now()
      const onSignal = (signal: NodeJS.Signals) => {
        if (signal === first && performance.now() - firstAt < Duration.toMillis(duplicateSignalWindow)) {
          log(
            Effect.logDebug(
              "the first signal again, within 1 s: the same request delivered twice (npm forwards it), not a second signal"
            ).pipe(Effect.annotateLogs({ signal }))
          )
          return
        }
        log(Effect.logWarning("shutdown: second signal, exiting now").pipe(Effect.annotateLogs({ signal })))
        process.exit(1)
      }
      for (const name of shutdownSignals) process.on(name, onSignal)
    })
  })
)

/** Time allowed after the connection deadline for the rest of the teardown (request fibers, database pool). */
const exitGrace = Duration.seconds(2)

/**
 * The backstop behind every deadline: when a shutdown is still not over `exitGrace` after `SHUTDOWN_TIMEOUT` (a
 * handler that ignores interruption, a database pool that never closes), the process exits with code 1 rather than
 * outstay its welcome. The timer starts with the first signal and never keeps the process alive.
 */
export const ExitAfterShutdownTimeout: Layer.Layer<never, never, AppConfig> = Layer.effectDiscard(
  Effect.gen(function* () {
    const config = yield* AppConfig
    const context = yield* Effect.context<never>()
    yield* onFirstSignal(() => {
      const timer = setTimeout(
        () => {
          Effect.runSyncWith(context)(
            Effect.logError("shutdown: still not finished after SHUTDOWN_TIMEOUT, exiting now").pipe(
              Effect.annotateLogs({ shutdownTimeoutMs: Duration.toMillis(config.shutdownTimeout) })
            )
          )
          process.exit(1)
        },
        Duration.toMillis(Duration.sum(config.shutdownTimeout, exitGrace))
      )
      timer.unref()
    })
  })
)

/**
 * Brackets the database: built right after the pool and torn down right before it, so the log shows the pool
 * closing as the last step of shutdown.
 */
export const DatabaseShutdownLog: Layer.Layer<never> = Layer.effectDiscard(
  Effect.addFinalizer(() => Effect.logInfo("shutdown: closing the database pool; shutdown complete"))
)
