import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect, type Scope } from "effect"
import { isDefined, poll } from "./poll.ts"

/** One request a receiver got. */
export interface Received {
  readonly headers: IncomingHttpHeaders
  readonly body: string
  /** performance.now() when the request body was complete. */
  readonly at: number
}

export interface Receiver {
  /** `http://127.0.0.1:<port>/hook` */
  readonly url: string
  readonly requests: ReadonlyArray<Received>
}

/**
 * A real webhook receiver on 127.0.0.1 (node:http), for the life of the scope. `respond` gets the 0-based index of the
 * request and answers it (it may wait first: a slow receiver).
 */
export const makeReceiver = (
  respond: (index: number, request: Received, response: ServerResponse) => void | Promise<void>
): Effect.Effect<Receiver, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const requests: Array<Received> = []
      const server = createServer((req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (chunk: Buffer) => chunks.push(chunk))
        req.on("end", () => {
          const received = { headers: req.headers, body: Buffer.concat(chunks).toString("utf8"), at: performance.now() }
          const index = requests.length
          requests.push(received)
          Promise.resolve(respond(index, received, res)).catch(() => res.destroy())
        })
      })
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
      const { port } = server.address() as AddressInfo
      return { server, receiver: { url: `http://127.0.0.1:${port}/hook`, requests } }
    }),
    ({ server }) =>
      Effect.promise(
        () =>
          new Promise<void>((resolve) => {
            server.closeAllConnections()
            server.close(() => resolve())
          })
      )
  ).pipe(Effect.map(({ receiver }) => receiver))

/** Answers with `status`, optional headers and body. */
export const answer = (
  response: ServerResponse,
  status: number,
  headers: Record<string, string> = {},
  body = ""
): void => {
  response.writeHead(status, headers)
  response.end(body)
}

/** Waits for the webhook of event `eventId` (its `webhook-id`) to reach `receiver`; returns that request. */
export const webhookOf = (receiver: Receiver, eventId: string, deadlineMs = 10_000) =>
  poll(
    `the webhook of ${eventId}`,
    Effect.sync(() => receiver.requests.find((r) => headerOf(r, "webhook-id") === eventId)),
    isDefined,
    { timeoutMs: deadlineMs }
  )

/** One header of a received request, `""` when absent or repeated. */
export const headerOf = (request: Received, name: string): string => {
  const value = request.headers[name]
  return typeof value === "string" ? value : ""
}

/** The Standard Webhooks headers of a received request, as `new Webhook(secret).verify(body, headers)` takes them. */
export const verifyHeaders = (request: Received) => ({
  "webhook-id": headerOf(request, "webhook-id"),
  "webhook-timestamp": headerOf(request, "webhook-timestamp"),
  "webhook-signature": headerOf(request, "webhook-signature")
})
