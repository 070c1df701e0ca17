import { spawn } from "node:child_process"
import { packageRoot } from "../../layers/PackageInfo.ts"

export interface ProcessResult {
  /** null when the process had to be killed at the deadline. */
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  readonly elapsedMs: number
}

/**
 * Runs `node <script>` (a source file: Node 24 strips the types) from the package root until it exits, or kills it
 * at `deadlineMs`. Resolves on "close", not "exit", so all output has been read.
 */
export const runToExit = (script: string, env: NodeJS.ProcessEnv, deadlineMs: number): Promise<ProcessResult> =>
  new Promise((resolve, reject) => {
    const started = Date.now()
    const child = spawn(process.execPath, [script], { cwd: packageRoot, env, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk
    })
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk
    })
    let timedOut = false
    const deadline = setTimeout(() => {
      timedOut = true
      child.kill("SIGKILL")
    }, deadlineMs)
    child.once("error", (error) => {
      clearTimeout(deadline)
      reject(error)
    })
    child.once("close", (code) => {
      clearTimeout(deadline)
      resolve({ code: timedOut ? null : code, stdout, stderr, elapsedMs: Date.now() - started })
    })
  })
