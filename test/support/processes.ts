import { type ChildProcessByStdio, spawn } from "node:child_process"
import type { Readable } from "node:stream"
import { Effect } from "effect"
import { testEncryptionKeysEnv } from "../../layers/AppConfigLive.ts"
import { packageRoot } from "../../layers/PackageInfo.ts"

export interface ProcessResult {
  /** null when the process had to be killed at the deadline. */
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  readonly elapsedMs: number
}

/** `node <script>` from the package root, its stdout and stderr collected as they come. */
const spawnScript = (script: string, env: NodeJS.ProcessEnv) => {
  const child = spawn(process.execPath, [script], { cwd: packageRoot, env, stdio: ["ignore", "pipe", "pipe"] })
  let stdout = ""
  let stderr = ""
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk
  })
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk
  })
  return { child, output: () => ({ stdout, stderr }) }
}

/**
 * Runs `node <script>` (a source file: Node 24 strips the types) from the package root until it exits, or kills it
 * at `deadlineMs`. Resolves on "close", not "exit", so all output has been read.
 */
export const runToExit = (script: string, env: NodeJS.ProcessEnv, deadlineMs: number): Promise<ProcessResult> =>
  new Promise((resolve, reject) => {
    const started = Date.now()
    const { child, output } = spawnScript(script, env)
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
      resolve({ code: timedOut ? null : code, ...output(), elapsedMs: Date.now() - started })
    })
  })

/** Polls `probe` every 20 ms until it returns a value, failing after `timeoutMs`. Never a fixed sleep. */
export const until = async <A>(what: string, timeoutMs: number, probe: () => Promise<A | undefined>): Promise<A> => {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** A long-running `node <script>` child whose JSON log lines are kept. */
export interface Service<A> {
  readonly child: ChildProcessByStdio<null, Readable, Readable>
  /** The parsed JSON lines of stdout so far. */
  readonly logs: () => ReadonlyArray<Record<string, unknown>>
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
  /** What `ready` returned for the first line it accepted. */
  readonly ready: A
}

/**
 * Starts `node <script>` from the package root and resolves once `ready` accepts one of its JSON log lines (within
 * `timeoutMs`); a child that exits first or never gets ready is killed and the promise fails with its output.
 */
export const startService = async <A>(
  script: string,
  env: NodeJS.ProcessEnv,
  ready: (entry: Record<string, unknown>) => A | undefined,
  timeoutMs = 30_000
): Promise<Service<A>> => {
  const { child, output } = spawnScript(script, env)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal }))
  )
  const logs = () =>
    output()
      .stdout.split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
  const value = await until(`${script} to get ready`, timeoutMs, async () => {
    if (child.exitCode !== null) {
      const { stdout, stderr } = output()
      throw new Error(`${script} exited with ${child.exitCode}: ${stderr}${stdout}`)
    }
    for (const entry of logs()) {
      const accepted = ready(entry)
      if (accepted !== undefined) return accepted
    }
    return undefined
  }).catch((error: unknown) => {
    child.kill("SIGKILL")
    throw error
  })
  return { child, logs, exited, ready: value }
}

/** SIGTERM (if still running), then waits for the exit. */
export const stopService = async (service: Service<unknown>): Promise<void> => {
  if (service.child.exitCode === null && service.child.signalCode === null) service.child.kill("SIGTERM")
  await service.exited
}

/** `src/main.ts` as a process on `databaseUrl`; `ready` is its base URL, once it logs `listening`. */
export type AppProcess = Service<string>

export const startAppProcess = (databaseUrl: string, env: Record<string, string> = {}): Promise<AppProcess> =>
  startService(
    "src/main.ts",
    {
      ...process.env,
      APP_ENV: "development",
      HOST: "127.0.0.1",
      PORT: "0",
      LOG_FORMAT: "json",
      LOG_LEVEL: "info",
      ACCESS_LOG: "false",
      DATABASE_URL: databaseUrl,
      DELIVERY_WORKER: "false",
      // The in-process test server's key: processes and the test server share the database and its sealed values.
      ENCRYPTION_KEYS: testEncryptionKeysEnv,
      ...env
    },
    (entry) =>
      entry.message === "listening" && typeof entry.port === "number" ? `http://127.0.0.1:${entry.port}` : undefined
  )

/** SIGTERM the app process and wait for it, as an Effect (for `acquireRelease`). */
export const stopAppProcess = (app: AppProcess) => Effect.promise(() => stopService(app))
