import { Effect, Layer, Option } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { AppConfig } from "../../services/AppConfig.ts"
import { Metrics, type MetricsShape } from "../../services/Metrics.ts"
import { OutboxStats, type OutboxStatsShape } from "../../services/OutboxStats.ts"
import { scrape } from "./MetricsServer.ts"
import { RouteTemplate } from "./RequestContext.ts"

const metricsResponse = (metrics: MetricsShape, outbox: OutboxStatsShape) =>
  Effect.map(scrape(metrics, outbox), (text) => HttpServerResponse.text(text, { contentType: metrics.contentType }))

/** `GET /metrics` on the API port: when metrics are on and no METRICS_PORT is set. */
export const MetricsRoute: Layer.Layer<never, never, HttpRouter.HttpRouter | Metrics | OutboxStats | AppConfig> =
  Layer.unwrap(
    Effect.gen(function* () {
      const config = yield* AppConfig
      if (!config.metricsEnabled || Option.isSome(config.metricsPort)) return Layer.empty
      const metrics = yield* Metrics
      const outbox = yield* OutboxStats
      return HttpRouter.add("GET", "/metrics", metricsResponse(metrics, outbox)).pipe(Layer.provide(RouteTemplate))
    })
  )
