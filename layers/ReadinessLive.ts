import { Effect, Layer } from "effect"
import { Readiness } from "../services/Readiness.ts"

/** In-process readiness flag. Each layer build gets its own, so tests never share one. */
export const ReadinessLive: Layer.Layer<Readiness> = Layer.sync(Readiness, () => {
  let draining = false
  return Readiness.of({
    isDraining: () => draining,
    beginDraining: Effect.sync(() => {
      draining = true
    })
  })
})
