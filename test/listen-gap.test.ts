import diagnostics from "node:diagnostics_channel"
import { request, type Server } from "node:http"
import { assert, it } from "@effect/vitest"
import { Deferred, Effect, Layer } from "effect"
import { pollPromise } from "./support/poll.ts"
import { acceptsConnections, freePort } from "./support/ports.ts"
import { testServer } from "./support/testServer.ts"
import { slack } from "./support/timing.ts"

/**
 * The port is open before the routes are mounted (NodeHttpServer listens while its layer is built; the rest of the
 * application is built after it). A load balancer routing to an open port sends requests into that gap on every
 * restart: they must wait for the routes and be answered, not hang.
 */

/** Resolves once something accepts TCP connections on `port` (polling every 10 ms); fails the test after 30 s. */
const untilPortOpen = (port: number) =>
  Effect.promise(() =>
    pollPromise(
      `port ${port} to accept connections`,
      () => acceptsConnections(port),
      (open) => open,
      {
        intervalMs: 10,
        timeoutMs: 30_000
      }
    )
  )

interface Answer {
  readonly status: number
  readonly body: string
  readonly mountedWhenAnswered: boolean
}

/**
 * GET /livez: `sent` resolves once the whole request is written to the connection, `answer` with the response (or
 * status 0 and the error).
 */
const getLivez = (port: number, mounted: () => boolean) => {
  let sent: () => void = () => undefined
  const written = new Promise<void>((resolve) => {
    sent = resolve
  })
  const answer = new Promise<Answer>((resolve) => {
    const req = request({ host: "127.0.0.1", port, path: "/livez", agent: false, timeout: slack(10_000) }, (res) => {
      let body = ""
      res.setEncoding("utf8").on("data", (chunk: string) => {
        body += chunk
      })
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, mountedWhenAnswered: mounted() }))
    })
    req.on("timeout", () => req.destroy(new Error("no answer")))
    req.on("error", (error) => resolve({ status: 0, body: String(error), mountedWhenAnswered: mounted() }))
    req.on("finish", sent)
    req.end()
  })
  return { written, answer }
}

/**
 * Resolves when the in-process server on `port` has received a request (Node's `http.server.request.start`
 * diagnostics channel, published as the server emits `request`: before any listener runs).
 */
const receivedOn = (port: number) =>
  new Promise<void>((resolve) => {
    const onStart = (message: unknown) => {
      const server = (message as { readonly server?: Server }).server
      const address = server?.address()
      if (typeof address !== "object" || address === null || address.port !== port) return
      diagnostics.unsubscribe("http.server.request.start", onStart)
      resolve()
    }
    diagnostics.subscribe("http.server.request.start", onStart)
  })

it.live(
  "a request that arrives after the port opens but before the routes are mounted is answered, not dropped",
  () =>
    Effect.gen(function* () {
      const port = yield* Effect.promise(freePort)
      let mounted = false
      // Mounting the routes waits for the test: the request is in the gap by construction, not by a race with a timer
      // (the stores and the worker take a while to build in production, under load).
      const mount = yield* Deferred.make<void>()
      const slowToMount = Layer.effectDiscard(
        Deferred.await(mount).pipe(Effect.andThen(Effect.sync(() => (mounted = true))))
      )
      yield* Layer.build(testServer({ config: { port }, extraRoutes: slowToMount })).pipe(Effect.forkScoped)
      yield* untilPortOpen(port)
      const received = receivedOn(port)
      const livez = getLivez(port, () => mounted)
      // Written is not yet received: the routes are mounted only once the server has taken the request in.
      yield* Effect.promise(() => livez.written)
      yield* Effect.promise(() => received)
      assert.isFalse(mounted, "the request went into the gap")
      yield* Deferred.succeed(mount, undefined)
      const response = yield* Effect.promise(() => livez.answer)
      assert.strictEqual(response.status, 200, response.body)
      assert.isTrue(response.mountedWhenAnswered)
    }).pipe(Effect.scoped),
  60_000
)
