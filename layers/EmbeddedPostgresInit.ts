import { spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { join } from "node:path"
import { Effect } from "effect"

/** Whether `directory` holds a PostgreSQL data directory already (initdb writes `PG_VERSION`). */
export const isInitialised = (directory: string): boolean => existsSync(join(directory, "PG_VERSION"))

/**
 * The Node flags a child keeps from this process: those that bound its memory (`--liftoff-only`, `--max-...`).
 * Not `--watch` (`npm run dev`) and the like, with which the child would never exit.
 */
const memoryFlags = (): Array<string> =>
  process.execArgv.filter((flag) => flag === "--liftoff-only" || flag.startsWith("--max-"))

/** The child's program: PGlite opens the directory (running initdb, since it is empty), then closes it. */
const initScript = `
const [directory, params] = process.argv.slice(1)
const { PGlite } = await import(${JSON.stringify(import.meta.resolve("@electric-sql/pglite"))})
const db = await PGlite.create(directory, { startParams: JSON.parse(params) })
await db.close()
`

/**
 * Runs initdb for an empty data directory in a short-lived child process, so this process opens it as any later start
 * does. In this process, initdb ran in a second, temporary PGlite instance (PGlite's WebAssembly module compiled again,
 * `initdb.wasm` with it) whose native allocations stayed behind once it was collected: a first boot idled at 275-350 MB
 * where every later start idles at 235 MB (bench/startup.ts). `fail` makes the error of a child that did not succeed
 * (its exit code or signal, and the end of its stderr). Interrupted, the child is killed.
 */
export const initialiseInChild = <E>(
  directory: string,
  startParams: ReadonlyArray<string>,
  fail: (message: string, cause?: unknown) => E
): Effect.Effect<void, E> =>
  Effect.callback<void, E>((resume) => {
    const child = spawn(
      process.execPath,
      [...memoryFlags(), "--input-type=module", "-e", initScript, directory, JSON.stringify(startParams)],
      { stdio: ["ignore", "ignore", "pipe"] }
    )
    let stderr = ""
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-2_000)
    })
    child.once("error", (cause) =>
      resume(Effect.fail(fail(`cannot start a process to initialise ${directory}`, cause)))
    )
    child.once("exit", (code, signal) =>
      resume(
        code === 0
          ? Effect.void
          : Effect.fail(
              fail(
                `initialising the data directory ${directory} failed (${signal ?? `exit code ${code}`})` +
                  (stderr.trim() === "" ? "" : `: ${stderr.trim()}`)
              )
            )
      )
    )
    return Effect.sync(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
    })
  })
