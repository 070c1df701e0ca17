import { Duration, Layer } from "effect"
import { CircuitBreaker } from "effect/persistence"
import { type EndpointCircuitsOptions, makeEndpointCircuits } from "../../layers/EndpointCircuitsLive.ts"
import { EndpointCircuits } from "../../services/EndpointCircuits.ts"
import type { Metrics } from "../../services/Metrics.ts"

/** Circuits on a memory store of their own with the given policy (no jitter by default: TestClock steps are exact). */
export const endpointCircuitsTest = (
  options: Partial<EndpointCircuitsOptions> = {}
): Layer.Layer<EndpointCircuits, never, Metrics> =>
  Layer.effect(
    EndpointCircuits,
    makeEndpointCircuits({
      failureThreshold: options.failureThreshold ?? 3,
      openBase: options.openBase ?? Duration.seconds(10),
      openMax: options.openMax ?? Duration.seconds(60),
      jitter: options.jitter ?? false
    })
  ).pipe(Layer.provide(CircuitBreaker.layerStoreMemory()))
