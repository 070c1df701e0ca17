import { Layer } from "effect"
import { makeMetrics } from "../../layers/MetricsLive.ts"
import { Metrics } from "../../services/Metrics.ts"

/**
 * A registry of this layer's own without the process metrics, so a test reads exactly what its requests produced.
 * `registry` gives the test direct access (`getSingleMetricAsString`, `getMetricsAsJSON`).
 */
export const makeMetricsTest = () => {
  const metrics = makeMetrics({ defaultMetrics: false })
  return { metrics, layer: Layer.succeed(Metrics, metrics) }
}

export const MetricsTest: Layer.Layer<Metrics> = Layer.sync(Metrics, () => makeMetrics({ defaultMetrics: false }))
