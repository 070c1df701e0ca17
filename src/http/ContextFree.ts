import { Context, Effect, Layer } from "effect"

/**
 * Builds a layer that needs nothing in an empty context. `HttpApiBuilder.group` keeps the context its layer was built
 * in and merges it into the fiber of every request its routes serve; merging a non-empty one copies the request's
 * whole context (and rebuilds the fiber's cached references) on each request, ~20% of a probe's throughput. A group
 * whose handlers took their services beforehand and whose endpoints have no middleware needs none of it.
 */
export const contextFree = <A, E>(layer: Layer.Layer<A, E>): Layer.Layer<A, E> =>
  Layer.fromBuild((memoMap, scope) =>
    Layer.buildWithMemoMap(layer, memoMap, scope).pipe(Effect.updateContext(() => Context.empty()))
  )
