import { connect } from "node:net"
import { assert, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { freePort } from "./support/ports.ts"
import { testServer } from "./support/testServer.ts"

/**
 * The port is open before the routes are mounted (NodeHttpServer listens while its layer is built; the rest of the
 * application is built after it). A load balancer routing to an open port sends requests into that gap on every
 * restart: they must wait for the routes and be answered, not hang.
 */

/** Resolves once something accepts TCP connections on `port` (polling every 10 ms). */
const untilPortOpen = (port: number) =>
  Effect.promise(async () => {
    for (;;) {
      const open = await new Promise<boolean>((resolve) => {
        const socket = connect(port, "127.0.0.1")
        socket.once("connect", () => {
          socket.destroy()
          resolve(true)
        })
        socket.once("error", () => resolve(false))
      })
      if (open) return
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  })

it.live(
  "a request that arrives after the port opens but before the routes are mounted is answered, not dropped",
  () =>
    Effect.gen(function* () {
      const port = yield* Effect.promise(freePort)
      let mounted = false
      // Mounting the routes takes a while here, as the stores and the worker do under load in production.
      const slowToMount = Layer.effectDiscard(
        Effect.sleep("1500 millis").pipe(Effect.andThen(Effect.sync(() => (mounted = true))))
      )
      yield* Layer.build(testServer({ config: { port }, extraRoutes: slowToMount })).pipe(Effect.forkScoped)
      yield* untilPortOpen(port)
      assert.isFalse(mounted, "the request goes into the gap")
      const response = yield* Effect.promise(() =>
        fetch(`http://127.0.0.1:${port}/livez`, { signal: AbortSignal.timeout(10_000) }).then(
          async (r) => ({ status: r.status, body: await r.text(), mountedWhenAnswered: mounted }),
          (error: unknown) => ({ status: 0, body: String(error), mountedWhenAnswered: mounted })
        )
      )
      assert.strictEqual(response.status, 200, response.body)
      assert.isTrue(response.mountedWhenAnswered)
    }).pipe(Effect.scoped),
  60_000
)
