import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Option } from "effect"
import { contextFree } from "../src/http/ContextFree.ts"

class Ambient extends Context.Service<Ambient, { readonly name: string }>()("test/Ambient") {}

/** What a layer saw of the context it was built in: HttpApiBuilder.group keeps exactly that for every request. */
class SeenAtBuild extends Context.Service<SeenAtBuild, Option.Option<{ readonly name: string }>>()(
  "test/SeenAtBuild"
) {}

const capture = Layer.effect(
  SeenAtBuild,
  Effect.map(Effect.context<never>(), (context) => Context.getOption(context, Ambient))
)

const seenAtBuild = (layer: Layer.Layer<SeenAtBuild>) =>
  Layer.build(layer).pipe(
    Effect.map((built) => Context.get(built, SeenAtBuild)),
    Effect.provideService(Ambient, { name: "app" }),
    Effect.scoped
  )

describe("contextFree", () => {
  it.effect("a layer built as is sees the surrounding services", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* seenAtBuild(capture), Option.some({ name: "app" }))
    })
  )

  it.effect("a context-free layer is built in an empty context: nothing surrounding it leaks in", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* seenAtBuild(contextFree(capture)), Option.none())
    })
  )
})
