/** The benchmarks' webhook receiver: node:http on 127.0.0.1, answering 204 at once, noting when each delivery arrived. */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"

/** Every request since the last `reset`: how many, when the first came, and how many repeated one already seen. */
export interface ReceiverTally {
  readonly received: number
  /** performance.now() of the first request, NaN before it. */
  readonly firstAt: number
  /** Requests whose `webhook-id` and URL (the endpoint: `?e=n`) arrived before: duplicates. */
  readonly repeated: number
}

export interface BenchReceiver {
  /** `http://127.0.0.1:<port>/hook` */
  readonly url: string
  /** performance.now() when the first delivery of the event (`webhook-id`) was complete; waits until then. */
  readonly arrived: (eventId: string) => Promise<number>
  /** Starts a new tally (drain benchmarks: one per run). */
  readonly reset: () => void
  readonly tally: () => ReceiverTally
  /** performance.now() when the `count`-th request since `reset` was complete; waits until then. */
  readonly reached: (count: number) => Promise<number>
  readonly close: () => void
}

export const startReceiver = async (): Promise<BenchReceiver> => {
  const arrivals = new Map<string, number>()
  const waiting = new Map<string, (at: number) => void>()
  let seen = new Set<string>()
  let received = 0
  let firstAt = Number.NaN
  let repeated = 0
  let goal: { readonly count: number; readonly resolve: (at: number) => void } | undefined
  const server = createServer((req, res) => {
    req.resume()
    req.on("end", () => {
      const id = String(req.headers["webhook-id"])
      const at = performance.now()
      if (!arrivals.has(id)) arrivals.set(id, at)
      res.writeHead(204).end()
      waiting.get(id)?.(at)
      waiting.delete(id)
      received++
      if (received === 1) firstAt = at
      const key = `${id} ${req.url}`
      if (seen.has(key)) repeated++
      else seen.add(key)
      if (goal !== undefined && received >= goal.count) {
        goal.resolve(at)
        goal = undefined
      }
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
    reset: () => {
      arrivals.clear()
      seen = new Set()
      received = 0
      firstAt = Number.NaN
      repeated = 0
    },
    tally: () => ({ received, firstAt, repeated }),
    reached: (count) =>
      new Promise<number>((resolve) => {
        if (received >= count) resolve(performance.now())
        else goal = { count, resolve }
      }),
    close: () => {
      server.closeAllConnections()
      server.close()
    }
  }
}
