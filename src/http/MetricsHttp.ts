import { createServer } from "node:http"
import { Effect, Layer, Option } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { nodeServerOptions } from "../../layers/HttpServerLive.ts"
import { AppConfig } from "../../services/AppConfig.ts"
import { Metrics, type MetricsShape } from "../../services/Metrics.ts"
import { RouteTemplate } from "./RequestContext.ts"

const metricsResponse = (metrics: MetricsShape) =>
  Effect.map(metrics.render, (text) => HttpServerResponse.text(text, { contentType: metrics.contentType }))

/** `GET /metrics` on the API port: when metrics are on and no METRICS_PORT is set. */
export const MetricsRoute: Layer.Layer<never, never, HttpRouter.HttpRouter | Metrics | AppConfig> = Layer.unwrap(
  Effect.gen(function* () {
    const config = yield* AppConfig
    if (!config.metricsEnabled || Option.isSome(config.metricsPort)) return Layer.empty
    const metrics = yield* Metrics
    return HttpRouter.add("GET", "/metrics", metricsResponse(metrics)).pipe(Layer.provide(RouteTemplate))
  })
)

/**
 * With METRICS_PORT set, `/metrics` is served there (on HOST) by a bare Node server, and not on the API port: scrapes
 * stay off the public listener. It closes when the application shuts down.
 */
export const MetricsServer: Layer.Layer<never, never, Metrics | AppConfig> = Layer.unwrap(
  Effect.gen(function* () {
    const config = yield* AppConfig
    if (!config.metricsEnabled || Option.isNone(config.metricsPort)) return Layer.empty
    const port = config.metricsPort.value
    const metrics = yield* Metrics
    return Layer.effectDiscard(
      Effect.acquireRelease(
        Effect.callback<ReturnType<typeof createServer>>((resume) => {
          // The API listener's timeouts (HTTP_*): an internal port is no reason to let silent connections linger.
          const server = createServer(nodeServerOptions(config.http), (request, response) => {
            const path = (request.url ?? "/").split("?")[0]
            if (request.method !== "GET" || path !== "/metrics") {
              response.writeHead(404, { "content-type": "text/plain" }).end("not found\n")
              return
            }
            Effect.runPromise(metrics.render).then(
              (text) => response.writeHead(200, { "content-type": metrics.contentType }).end(text),
              () => response.writeHead(500).end()
            )
          })
          server.listen(port, config.host, () => resume(Effect.succeed(server)))
        }).pipe(Effect.tap(() => Effect.logInfo("metrics listening").pipe(Effect.annotateLogs({ port })))),
        (server) =>
          Effect.callback<void>((resume) => {
            server.close(() => resume(Effect.void))
            server.closeAllConnections()
          })
      )
    )
  })
)
