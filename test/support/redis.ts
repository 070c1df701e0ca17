import { spawn } from "node:child_process"
import { Effect } from "effect"
import { pollPromise } from "./poll.ts"

export interface ThrowawayRedis {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string
  /** SIGKILLs the server (if still running) and waits for it to exit. */
  readonly kill: () => Promise<void>
  /** SIGSTOPs the server: connections stay up, nothing is answered (a stalled server, a dropped network). */
  readonly pause: () => void
  /** SIGCONTs a paused server. */
  readonly resume: () => void
}

/**
 * A throwaway `redis-server` of the test's own (never the machine's shared one on 6379, which other suites use), on
 * `port` (a free one: `freePort`), without persistence, so one started again on the same port comes back empty; killed
 * when the scope closes (or earlier by the test).
 */
export const throwawayRedis = (port: number) =>
  Effect.acquireRelease(
    Effect.promise(async (): Promise<ThrowawayRedis> => {
      const child = spawn(
        "redis-server",
        ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        { stdio: ["ignore", "pipe", "pipe"] }
      )
      let output = ""
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        output += chunk
      })
      const exited = new Promise((resolve) => child.once("exit", resolve))
      await pollPromise(
        "redis-server to accept connections",
        async () => {
          if (child.exitCode !== null) throw new Error(`redis-server exited: ${output}`)
          return output
        },
        (soFar) => soFar.includes("Ready to accept connections"),
        { timeoutMs: 15_000, show: (soFar) => soFar.slice(-500) }
      )
      const kill = async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill("SIGKILL")
          await exited
        }
      }
      const signal = (name: NodeJS.Signals) => () => {
        if (child.exitCode === null && child.signalCode === null) child.kill(name)
      }
      return { url: `redis://127.0.0.1:${port}`, kill, pause: signal("SIGSTOP"), resume: signal("SIGCONT") }
    }),
    (redis) => Effect.promise(redis.kill)
  )
