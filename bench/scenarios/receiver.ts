/** The benchmarks' webhook receiver: node:http on 127.0.0.1, answering 204 at once, noting when each delivery arrived. */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"

export interface BenchReceiver {
  /** `http://127.0.0.1:<port>/hook` */
  readonly url: string
  /** performance.now() when the first delivery of the event (`webhook-id`) was complete; waits until then. */
  readonly arrived: (eventId: string) => Promise<number>
  readonly close: () => void
}

export const startReceiver = async (): Promise<BenchReceiver> => {
  const arrivals = new Map<string, number>()
  const waiting = new Map<string, (at: number) => void>()
  const server = createServer((req, res) => {
    req.resume()
    req.on("end", () => {
      const id = String(req.headers["webhook-id"])
      const at = performance.now()
      if (!arrivals.has(id)) arrivals.set(id, at)
      res.writeHead(204).end()
      waiting.get(id)?.(at)
      waiting.delete(id)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    arrived: (id) =>
      new Promise<number>((resolve) => {
        const at = arrivals.get(id)
        if (at !== undefined) resolve(at)
        else waiting.set(id, resolve)
      }),
    close: () => {
      server.closeAllConnections()
      server.close()
    }
  }
}
