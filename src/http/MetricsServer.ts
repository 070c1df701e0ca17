import { createServer } from "node:http"
import { Data, Effect, Layer, Option } from "effect"
import { AppConfig } from "../../services/AppConfig.ts"
import { Metrics, type MetricsShape } from "../../services/Metrics.ts"
import { OutboxStats, type OutboxStatsShape } from "../../services/OutboxStats.ts"
import { nodeServerOptions } from "../domain/NodeServerOptions.ts"
import { pathOf } from "../domain/RequestPath.ts"

/** One scrape: the outbox gauges read from the database (cached, bounded, never failing), then every metric. */
export const scrape = (metrics: MetricsShape, outbox: OutboxStatsShape) =>
  Effect.gen(function* () {
    metrics.outbox(yield* outbox.read)
    return yield* metrics.render
  })

/** The metrics listener could not open its port (in use, not permitted): the process does not start. */
export class MetricsListenFailed extends Data.TaggedError("MetricsListenFailed")<{
  readonly port: number
  readonly message: string
}> {}

/**
 * With METRICS_PORT set, `/metrics` is served there (on HOST) by a bare Node server, and not on the API port: scrapes
 * stay off the public listener. It closes when the application shuts down.
 */
export const MetricsServer: Layer.Layer<never, MetricsListenFailed, Metrics | OutboxStats | AppConfig> = Layer.unwrap(
  Effect.gen(function* () {
    const config = yield* AppConfig
    if (!config.metricsEnabled || Option.isNone(config.metricsPort)) return Layer.empty
    const port = config.metricsPort.value
    const metrics = yield* Metrics
    const outbox = yield* OutboxStats
    // Scrapes run outside any request fiber: with the application's logger and tracer, not Effect's defaults.
    const context = yield* Effect.context<never>()
    return Layer.effectDiscard(
      Effect.acquireRelease(
        Effect.callback<ReturnType<typeof createServer>, MetricsListenFailed>((resume) => {
          // The API listener's timeouts (HTTP_*): an internal port is no reason to let silent connections linger.
          const server = createServer(nodeServerOptions(config.http), (request, response) => {
            const path = pathOf(request.url ?? "/")
            if (request.method !== "GET" || path !== "/metrics") {
              response.writeHead(404, { "content-type": "text/plain" }).end("not found\n")
              return
            }
            Effect.runPromiseWith(context)(scrape(metrics, outbox)).then(
              (text) => response.writeHead(200, { "content-type": metrics.contentType }).end(text),
              () => response.writeHead(500).end()
            )
          })
          server.once("error", (error) =>
            resume(Effect.fail(new MetricsListenFailed({ port, message: `METRICS_PORT ${port}: ${error.message}` })))
          )
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
