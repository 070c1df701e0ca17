import { createServer, Socket } from "node:net"
import { Effect, type Scope } from "effect"

export interface TcpProxy {
  readonly port: number
  /** Drops every open connection and refuses new ones: to clients, the server behind has gone away. */
  readonly cut: () => void
  /**
   * Keeps every connection open but forwards nothing either way, and accepts new ones that never reach the server:
   * to clients, the server behind hangs (no error, no answer). `restore` lets the data flow again.
   */
  readonly stall: () => void
  readonly restore: () => void
}

/**
 * A loopback TCP proxy in front of a real server, so a test can take a dependency "down" and bring it back without
 * touching the server itself (which other test files share).
 */
export const startTcpProxy = (targetPort: number): Effect.Effect<TcpProxy, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(
      () =>
        new Promise<{ proxy: TcpProxy; close: () => Promise<void> }>((resolve) => {
          const sockets = new Set<Socket>()
          let up = true
          let stalled = false
          const server = createServer((client) => {
            if (!up) return client.destroy()
            const upstream = new Socket()
            sockets.add(client).add(upstream)
            const forget = () => {
              sockets.delete(client)
              sockets.delete(upstream)
              client.destroy()
              upstream.destroy()
            }
            client.on("error", forget).on("close", forget)
            upstream.on("error", forget).on("close", forget)
            upstream.connect(targetPort, "127.0.0.1", () => {
              client.pipe(upstream)
              upstream.pipe(client)
              // pipe() resumes its source: pause again after it.
              if (stalled) {
                client.pause()
                upstream.pause()
              }
            })
          })
          server.listen(0, "127.0.0.1", () => {
            const address = server.address()
            const port = typeof address === "object" && address !== null ? address.port : 0
            const cut = () => {
              up = false
              for (const socket of sockets) socket.destroy()
              sockets.clear()
            }
            const stall = () => {
              stalled = true
              for (const socket of sockets) socket.pause()
            }
            const restore = () => {
              up = true
              stalled = false
              for (const socket of sockets) socket.resume()
            }
            resolve({
              proxy: { port, cut, stall, restore },
              close: () =>
                new Promise((done) => {
                  cut()
                  server.close(() => done())
                })
            })
          })
        })
    ),
    ({ close }) => Effect.promise(close)
  ).pipe(Effect.map(({ proxy }) => proxy))
