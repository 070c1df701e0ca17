import { createServer, type Server } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import type { NodeServices } from "@effect/platform-node/NodeServices"
import { ByteSize, Duration, Effect, Layer } from "effect"
import type { Etag, HttpPlatform, HttpServer } from "effect/http"
import { HttpServerRequest } from "effect/http"
import type { ServeError } from "effect/http/HttpServerError"
import { AppConfig } from "../services/AppConfig.ts"

/**
 * Owns the Node `http.Server`, so shutdown can enforce its deadline: whatever connection is still open when the
 * drain budget runs out (a hung request, a slow client) is closed here, after the listener has stopped.
 */
const nodeServer: Effect.Effect<Server, never, import("effect").Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => createServer()),
  (server) =>
    Effect.gen(function* () {
      server.closeAllConnections()
      yield* Effect.logInfo("shutdown: listener closed, remaining connections closed")
    })
)

/**
 * The HTTP server: NodeHttpServer on HOST:PORT, with the request body limit. The drain budget is what is left of
 * `SHUTDOWN_TIMEOUT` after `SHUTDOWN_DELAY`, so the whole shutdown stays within `SHUTDOWN_TIMEOUT` of the signal.
 */
export const HttpServerLive: Layer.Layer<
  HttpServer.HttpServer | NodeServices | HttpPlatform.HttpPlatform | Etag.Generator,
  ServeError,
  AppConfig
> = Layer.unwrap(
  Effect.gen(function* () {
    const config = yield* AppConfig
    const server = yield* nodeServer
    const drainBudget = Duration.max(Duration.subtract(config.shutdownTimeout, config.shutdownDelay), Duration.zero)
    return Layer.merge(
      NodeHttpServer.layer(() => server, {
        host: config.host,
        port: config.port,
        gracefulShutdownTimeout: drainBudget
      }),
      Layer.succeed(HttpServerRequest.MaxBodySize, ByteSize.bytes(config.bodyLimitBytes))
    )
  })
)
