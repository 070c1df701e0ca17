import { type ChildProcessByStdio, spawn } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import { delimiter } from "node:path"
import type { Readable } from "node:stream"
import { Effect } from "effect"
import { packageRoot } from "../../src/domain/PackageInfo.ts"
import { isDefined, pollPromise } from "./poll.ts"

export interface ProcessResult {
  /** null when the process had to be killed at the deadline. */
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  readonly elapsedMs: number
}

/** How a child is started: `node <script>` (Node 24, types stripped) or a command such as `npm start`. */
export type Command =
  | string
  | { readonly file: string; readonly args: ReadonlyArray<string>; readonly detached?: boolean }

const describeCommand = (command: Command): string =>
  typeof command === "string" ? command : [command.file, ...command.args].join(" ")

/** The command from the package root, its stdout and stderr collected as they come. */
const spawnScript = (command: Command, env: NodeJS.ProcessEnv) => {
  const [file, args, detached] =
    typeof command === "string"
      ? [process.execPath, [command], false]
      : [command.file, [...command.args], command.detached ?? false]
  const child = spawn(file, args, { cwd: packageRoot, env, detached, stdio: ["ignore", "pipe", "pipe"] })
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
export const runToExit = (script: Command, env: NodeJS.ProcessEnv, deadlineMs: number): Promise<ProcessResult> =>
  new Promise((resolve, reject) => {
    const started = Date.now()
    const { child, output } = spawnScript(script, env)
    let timedOut = false
    const deadline = setTimeout(() => {
      timedOut = true
      for (const pid of descendantsOf(child.pid ?? 0)) process.kill(pid, "SIGKILL")
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

/** A long-running `node <script>` child whose JSON log lines are kept. */
export interface Service<A> {
  readonly child: ChildProcessByStdio<null, Readable, Readable>
  /** The parsed JSON lines of stdout so far (whole lines: not one still being written). */
  readonly logs: () => ReadonlyArray<Record<string, unknown>>
  /** Everything written so far, JSON or not. */
  readonly output: () => { readonly stdout: string; readonly stderr: string }
  /** The exit code or signal, and `at`, performance.now() when the process exited. */
  readonly exited: Promise<{
    readonly code: number | null
    readonly signal: NodeJS.Signals | null
    readonly at: number
  }>
  /** What `ready` returned for the first line it accepted. */
  readonly ready: A
}

/**
 * Starts `node <script>` from the package root and resolves once `ready` accepts one of its JSON log lines (within
 * `timeoutMs`); a child that exits first or never gets ready is killed and the promise fails with its output.
 */
export const startService = async <A>(
  script: Command,
  env: NodeJS.ProcessEnv,
  ready: (entry: Record<string, unknown>) => A | undefined,
  timeoutMs = 30_000
): Promise<Service<A>> => {
  const { child, output } = spawnScript(script, env)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal, at: performance.now() }))
  )
  const logs = () =>
    output()
      .stdout.split("\n")
      // After the last newline: "" or a line still being written, to be read once it is whole.
      .slice(0, -1)
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
  const readyEntry = async () => {
    if (child.exitCode !== null) {
      const { stdout, stderr } = output()
      throw new Error(`${describeCommand(script)} exited with ${child.exitCode}: ${stderr}${stdout}`)
    }
    for (const entry of logs()) {
      const accepted = ready(entry)
      if (accepted !== undefined) return accepted
    }
    return undefined
  }
  const value = await pollPromise(`${describeCommand(script)} to get ready`, readyEntry, isDefined, {
    timeoutMs,
    // The last value read is always "nothing yet": the output says why.
    show: () => `no ready line; output so far: ${JSON.stringify(output()).slice(-500)}`
  }).catch((error: unknown) => {
    // A command such as `npm start` has children of its own: they must not outlive the test.
    for (const pid of descendantsOf(child.pid ?? 0)) process.kill(pid, "SIGKILL")
    child.kill("SIGKILL")
    throw error
  })
  return { child, logs, output, exited, ready: value }
}

/** SIGTERM (if still running), then waits for the exit. */
export const stopService = async (service: Service<unknown>): Promise<void> => {
  if (service.child.exitCode === null && service.child.signalCode === null) service.child.kill("SIGTERM")
  await service.exited
}

/**
 * The environment of an operator's shell: this process's, without what `npx`/`npm test` added (the `npm_*`
 * variables, `node_modules/.bin` first on PATH), so `npm` is the system's and runs on its own Node, as it does for
 * someone typing `npm start`.
 */
export const operatorEnv = (env: Record<string, string> = {}): NodeJS.ProcessEnv => {
  const inherited = Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith("npm_"))
  const path = (process.env.PATH ?? "")
    .split(delimiter)
    .filter((entry) => !entry.includes("node_modules/.bin"))
    .join(delimiter)
  return { ...Object.fromEntries(inherited), PATH: path, npm_config_update_notifier: "false", ...env }
}

/**
 * `npm <args>` from the package root. `detached` gives npm a process group of its own, as a terminal or a service
 * manager does, so a test can signal the whole group the way Ctrl-C or systemd's `KillMode=control-group` does.
 */
export const npm = (args: ReadonlyArray<string>, options: { readonly detached?: boolean } = {}): Command => ({
  file: "npm",
  args,
  detached: options.detached ?? false
})

/** `pid (comm) state ppid ...` of every process (Linux /proc); comm may hold spaces, so fields are read after ")". */
const processTable = (): ReadonlyArray<{ readonly pid: number; readonly ppid: number; readonly state: string }> =>
  readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .flatMap((entry) => {
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, "utf8")
        const [state = "", ppid = ""] = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
        return [{ pid: Number(entry), ppid: Number(ppid), state }]
      } catch {
        return []
      }
    })

/** Every process below `pid` (children, grandchildren, ...), zombies excluded. */
export const descendantsOf = (pid: number): ReadonlyArray<number> => {
  const table = processTable().filter((p) => p.state !== "Z")
  const found: Array<number> = []
  for (let frontier = [pid]; frontier.length > 0; ) {
    const children = table.filter((p) => frontier.includes(p.ppid)).map((p) => p.pid)
    found.push(...children)
    frontier = children
  }
  return found
}

/** Whether `pid` is a running process (a zombie has exited: it only waits to be reaped). */
export const isRunning = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
  } catch {
    return false
  }
}

/** The command line of a process, as `ps` shows it. */
export const commandLineOf = (pid: number): string =>
  readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ")

/**
 * A delivery worker process (`src/worker.ts`) with `env`, once it logs that it started, for the life of the scope;
 * `ready` is its worker id (the `locked_by` of its leases).
 */
export const startWorkerProcess = (env: NodeJS.ProcessEnv) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      startService("src/worker.ts", env, (entry) =>
        entry.message === "delivery worker started" && typeof entry.workerId === "string" ? entry.workerId : undefined
      )
    ),
    (worker) => Effect.promise(() => stopService(worker))
  )
