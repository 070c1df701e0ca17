import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from "node:http"
import type { Socket } from "node:net"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import type { NodeServices } from "@effect/platform-node/NodeServices"
import { ByteSize, Context, Duration, Effect, Layer } from "effect"
import type { Etag, HttpPlatform, HttpServer } from "effect/http"
import { HttpServerRequest } from "effect/http"
import type { ServeError } from "effect/http/HttpServerError"
import { AppConfig, type HttpServerConfig } from "../services/AppConfig.ts"
import { Metrics } from "../services/Metrics.ts"

/**
 * The hard end of the connection drain. Started by the first step of shutdown (GracefulShutdown): `SHUTDOWN_TIMEOUT`
 * later, every connection still open (a hung request, a client that never finishes its request) is closed, whether
 * or not the request's handler reacts to interruption.
 */
export class ConnectionDeadline extends Context.Service<
  ConnectionDeadline,
  {
    /** Starts the clock; returns at once. */
    readonly start: Effect.Effect<void>
  }
>()("codex/ConnectionDeadline") {}

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
    if (event !== "request" || listener === hold) return
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

/** Whole milliseconds, at least 1: Node rejects fractions (and 0 would turn a timeout off). */
const wholeMillis = (duration: Duration.Duration): number => Math.max(1, Math.ceil(Duration.toMillis(duration)))

/**
 * The Node options behind HTTP_HEADERS_TIMEOUT, HTTP_REQUEST_TIMEOUT and HTTP_KEEP_ALIVE_TIMEOUT. Measured on Node
 * 24.21 (raw sockets; see the README, "Connections and timeouts"):
 * - A connection that never sends a byte counts against `headersTimeout` from its opening; one that sends headers
 *   slowly, from its request's first byte; a body that trickles in, against `requestTimeout` from that first byte.
 *   Node answers `408` and closes, but only when it checks, every `connectionsCheckingInterval` (default 30 s): with
 *   Node's defaults (60 s, 300 s) a silent connection lived 86.7 s on this server, and a trickling body up to 330 s
 *   (328 s in the issue). Checking every second (each check walks only the connections mid-request) makes the
 *   timeouts what they say.
 * - An idle keep-alive connection is closed `keepAliveTimeout` + 1 s (Node's `keepAliveTimeoutBuffer`) after the
 *   response; the idle time does not count against the next request's `headersTimeout`.
 * - `server.timeout` (socket inactivity) is left off: it cuts nothing a trickle keeps alive, and it would cut a
 *   quiet, legitimate response.
 * - `maxConnections`: a connection over the cap is closed at once, without a response, and Node emits `drop`.
 */
export const nodeServerOptions = (http: HttpServerConfig) => {
  const headersTimeout = wholeMillis(http.headersTimeout)
  const requestTimeout = wholeMillis(http.requestTimeout)
  return {
    headersTimeout,
    requestTimeout,
    keepAliveTimeout: wholeMillis(http.keepAliveTimeout),
    // Every second, or a tenth of a shorter timeout (tests): a timeout is enforced at most this late.
    connectionsCheckingInterval: Math.min(1000, Math.max(10, Math.floor(Math.min(headersTimeout, requestTimeout) / 10)))
  } satisfies ServerOptions
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
