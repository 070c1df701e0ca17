import { connect } from "node:net"
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { request } from "./support/http.ts"
import { expectProblem } from "./support/problems.ts"
import { TestServer, testServer } from "./support/testServer.ts"

/**
 * What Node's HTTP parser refuses before any handler runs (a request line and headers over 16 KiB, malformed HTTP)
 * is answered with the status Node would give, a problem+json body like every other error, and the connection
 * closed. Before, Node wrote a bare status line: the fuzz suite found it with a 20,000-character query string.
 */

/** Sends `raw` on a fresh connection and resolves with everything received until the server closes it. */
const exchange = (port: number, raw: string) =>
  Effect.promise(
    () =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(port, "127.0.0.1", () => socket.write(raw))
        let received = ""
        socket.setEncoding("utf8")
        socket.on("data", (chunk: string) => {
          received += chunk
        })
        socket.on("close", () => resolve(received))
        socket.on("error", reject)
        socket.setTimeout(10_000, () => socket.destroy(new Error("no answer in 10 s")))
      })
  )

const problemOf = (received: string) => {
  const [head = "", body = ""] = received.split("\r\n\r\n")
  return { head, problem: JSON.parse(body) as Record<string, unknown> }
}

layer(testServer(), { excludeTestServices: true })("requests Node refuses itself", (it) => {
  it.effect("a URL over the 16 KiB header limit: 431 problem+json, through a real client", () =>
    Effect.gen(function* () {
      const response = yield* request(`/v1/events?type=${"x".repeat(20_000)}`)
      const problem = expectProblem(response, 431)
      assert.match(String(problem.detail), /larger than the server accepts/)
    })
  )

  it.effect("malformed HTTP: 400 problem+json, the connection closed", () =>
    Effect.gen(function* () {
      const { baseUrl } = yield* TestServer
      const port = Number(new URL(baseUrl).port)
      const received = yield* exchange(port, "GET / HTTP/1.1\r\nHost: localhost\r\nNo colon here\r\n\r\n")
      const { head, problem } = problemOf(received)
      assert.match(head, /^HTTP\/1\.1 400 Bad Request\r\n/)
      assert.match(head, /\r\nContent-Type: application\/problem\+json\r\n/i)
      assert.match(head, /\r\nConnection: close/i)
      assert.deepInclude(problem, { type: "about:blank", title: "Bad Request", status: 400 })
    })
  )
})
