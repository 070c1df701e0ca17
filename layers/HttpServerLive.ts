import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { Socket } from "node:net"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import type { NodeServices } from "@effect/platform-node/NodeServices"
import { ByteSize, Duration, Effect, Layer } from "effect"
import type { Etag, HttpPlatform, HttpServer } from "effect/http"
import { HttpServerRequest } from "effect/http"
import type { ServeError } from "effect/http/HttpServerError"
import { AppConfig } from "../services/AppConfig.ts"
import { ConnectionDeadline } from "../services/ConnectionDeadline.ts"
import { Metrics } from "../services/Metrics.ts"
import { nodeServerOptions } from "../src/domain/NodeServerOptions.ts"
import { answerClientErrors } from "./ClientErrors.ts"

/**
 * NodeHttpServer listens while its layer is built, but attaches its request handler only when the routes are served,
 * after the rest of the application's layers (database, stores, worker) are up. Node drops a request no listener
 * takes, so a connection arriving in between would hang until a timeout: a load balancer that routes to an open port
 * (nginx does) sends requests into that gap on every restart. Instead they wait here and are handed to the handler
 * the moment it is attached.
 */
const holdRequestsUntilServed = (server: Server): void => {
  const held: Array<readonly [IncomingMessage, ServerResponse]> = []
  const hold = (request: IncomingMessage, response: ServerResponse) => {
    held.push([request, response])
  }
  const onListener = (event: string | symbol, listener: (...args: Array<never>) => void) => {
    // NodeHttpServer (@effect/platform-node 4.1.5) adds a listener of its own before it listens, which answers 503
    // while it is the only one: not the handler. With `hold` still attached it stands aside, and the requests wait.
    if (event !== "request" || listener === hold || !server.listening) return
    server.off("newListener", onListener)
    server.off("request", hold)
    const handler = listener as (request: IncomingMessage, response: ServerResponse) => void
    // After the handler is in place ("newListener" fires just before it is added).
    queueMicrotask(() => {
      for (const [request, response] of held.splice(0)) handler.call(server, request, response)
    })
  }
  server.on("request", hold)
  server.on("newListener", onListener)
}

/** At most one log line a minute about connections dropped at the cap; the metric counts every one. */
const dropLogInterval = 60_000

/**
 * Owns the Node `http.Server`, so shutdown can enforce its deadline. NodeHttpServer's own finalizer closes the
 * listener, waits for open connections to finish, then interrupts the request fibers; it would wait for a handler
 * that ignores interruption, so the deadline closes the sockets itself rather than through that finalizer.
 */
const ownedServer = Effect.gen(function* () {
  const config = yield* AppConfig
  const metrics = config.metricsEnabled ? yield* Metrics : undefined
  const scope = yield* Effect.scope
  const context = yield* Effect.context<never>()
  const server = createServer(nodeServerOptions(config.http))
  server.maxConnections = config.http.maxConnections
  holdRequestsUntilServed(server)
  answerClientErrors(server)
  // Every socket, including upgraded ones that `closeAllConnections` does not know about.
  const open = new Set<Socket>()
  server.on("connection", (socket: Socket) => {
    open.add(socket)
    metrics?.connectionOpened()
    socket.once("close", () => {
      open.delete(socket)
      metrics?.connectionClosed()
    })
  })
  let droppedSinceLog = 0
  let lastDropLog = Number.NEGATIVE_INFINITY
  server.on("drop", () => {
    metrics?.connectionDropped()
    droppedSinceLog++
    const now = performance.now()
    if (now - lastDropLog < dropLogInterval) return
    lastDropLog = now
    const dropped = droppedSinceLog
    droppedSinceLog = 0
    Effect.runForkWith(context)(
      Effect.logWarning("connections: HTTP_MAX_CONNECTIONS reached, closing new connections").pipe(
        Effect.annotateLogs({ maxConnections: config.http.maxConnections, dropped })
      )
    )
  })
  // A socket is destroyed (and the server stops counting it) a moment before its "close" event.
  const remaining = () => [...open].filter((socket) => !socket.destroyed)
  let cut = false

  const closeRemaining = Effect.gen(function* () {
    const sockets = remaining()
    if (sockets.length === 0) return
    cut = true
    yield* Effect.logWarning(
      `shutdown: deadline reached, closing ${sockets.length} open connection${sockets.length === 1 ? "" : "s"}`
    )
    server.closeAllConnections()
    for (const socket of sockets) socket.destroy()
  })

  // Runs once NodeHttpServer's finalizer is done: after the drain, or after the deadline closed what was left.
  yield* Effect.addFinalizer(() =>
    Effect.gen(function* () {
      if (cut) return
      if (remaining().length === 0) return yield* Effect.logInfo("shutdown: every connection finished")
      yield* closeRemaining
    })
  )
  // Forked into this layer's scope: interrupted when the layer is torn down, i.e. when the drain ended in time.
  const deadline = ConnectionDeadline.of({
    start: Effect.sleep(config.shutdownTimeout).pipe(
      Effect.andThen(closeRemaining),
      Effect.forkIn(scope),
      Effect.asVoid
    )
  })
  return { server, deadline }
})

/**
 * The HTTP server: NodeHttpServer on HOST:PORT, with the request body limit, the timeouts and connection cap of
 * HTTP_*, and the connection deadline. The deadline counts from the signal; NodeHttpServer's own drain timeout is
 * only a fallback behind it.
 */
export const HttpServerLive: Layer.Layer<
  HttpServer.HttpServer | NodeServices | HttpPlatform.HttpPlatform | Etag.Generator | ConnectionDeadline,
  ServeError,
  AppConfig | Metrics
> = Layer.unwrap(
  Effect.gen(function* () {
    const config = yield* AppConfig
    const { server, deadline } = yield* ownedServer
    return Layer.mergeAll(
      NodeHttpServer.layer(() => server, {
        host: config.host,
        port: config.port,
        gracefulShutdownTimeout: Duration.sum(config.shutdownTimeout, Duration.seconds(1))
      }),
      Layer.succeed(HttpServerRequest.MaxBodySize, ByteSize.bytes(config.bodyLimitBytes)),
      Layer.succeed(ConnectionDeadline, deadline)
    )
  })
)
