import { spawn } from "node:child_process"
import { join } from "node:path"
import { assert } from "@effect/vitest"
import { Effect } from "effect"
import { build } from "esbuild"
import { packageRoot } from "../../src/domain/PackageInfo.ts"
import { pollPromise, within } from "./poll.ts"

/**
 * The `codex` CLI (src/cli/bin.ts) as a child process, the way an operator runs it: Node 24, the environment of this
 * process without any CODEX_* variable or colour setting of the developer's, and no config file unless the test gives
 * one. It runs bundled, as the image runs it (infra/build/bundle.ts: the sources and their dependencies in one file,
 * built once per test run): loading Effect's modules one by one costs about a second of CPU per run, and these tests
 * start dozens; `sources: true` runs the TypeScript sources themselves (the `bin` package.json names).
 */

/** The CLI and the migration entry point it runs (`../migrate.js` next to it), bundled once per process. */
const bundleDir = join(packageRoot, "test-results", `codex-cli-${process.pid}`)
let bundled: Promise<string> | undefined
const bundledCli = (): Promise<string> => {
  bundled ??= build({
    entryPoints: { "cli/bin": join(packageRoot, "src/cli/bin.ts"), migrate: join(packageRoot, "src/migrate.ts") },
    outdir: bundleDir,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node24",
    external: ["@electric-sql/pglite"],
    banner: {
      js: "import { createRequire as __bundleRequire } from 'node:module'; const require = __bundleRequire(import.meta.url);"
    },
    logLevel: "warning"
  }).then(() => join(bundleDir, "cli", "bin.js"))
  return bundled
}

const entryOf = (sources: boolean): Promise<string> =>
  sources ? Promise.resolve(join(packageRoot, "src/cli/bin.ts")) : bundledCli()

/** A config home with nothing in it: the default config file does not exist. */
const noConfigHome = join(packageRoot, "test", ".no-codex-config")

export const cliEnv = (env: Readonly<Record<string, string>>): NodeJS.ProcessEnv => ({
  ...Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !/^(CODEX_|NO_COLOR$|FORCE_COLOR$|npm_)/i.test(name))
  ),
  XDG_CONFIG_HOME: noConfigHome,
  ...env
})

export interface CodexRun {
  /** null when it had to be killed at the deadline. */
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const spawnCodex = (
  entry: string,
  args: ReadonlyArray<string>,
  env: Readonly<Record<string, string>>,
  stdin: string | undefined
) => {
  const child = spawn(process.execPath, [entry, ...args], {
    cwd: packageRoot,
    env: cliEnv(env),
    stdio: ["pipe", "pipe", "pipe"]
  })
  let stdout = ""
  let stderr = ""
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk
  })
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk
  })
  // Without input, stdin is closed at once (as `< /dev/null`): not a terminal, and empty.
  child.stdin.end(stdin ?? "")
  return { child, output: () => ({ stdout, stderr }) }
}

export interface CodexOptions {
  readonly env?: Readonly<Record<string, string>>
  /** Written to its stdin, which is then closed (otherwise stdin is empty). */
  readonly stdin?: string
  /** Run the TypeScript sources (src/cli/bin.ts) instead of the bundle. */
  readonly sources?: boolean
}

/** Runs `codex <args>` to its end (killed after 30 s: a hang fails the test with what it printed). */
export const codex = (args: ReadonlyArray<string>, options: CodexOptions = {}): Effect.Effect<CodexRun> =>
  Effect.promise(async () => {
    const entry = await entryOf(options.sources === true)
    return new Promise<CodexRun>((resolve, reject) => {
      const { child, output } = spawnCodex(entry, args, options.env ?? {}, options.stdin)
      const deadline = setTimeout(() => child.kill("SIGKILL"), 30_000)
      child.once("error", (error) => {
        clearTimeout(deadline)
        reject(error)
      })
      child.once("close", (code) => {
        clearTimeout(deadline)
        resolve({ code, ...output() })
      })
    })
  })

/** Asserts the exit code (the output in the message) and returns the run. */
export const expectExit = (run: CodexRun, code: number): CodexRun => {
  assert.strictEqual(run.code, code, `exit ${run.code}\nstdout: ${run.stdout}\nstderr: ${run.stderr}`)
  return run
}

/** A run that succeeded: its stdout. */
export const ok = (run: CodexRun): string => expectExit(run, 0).stdout

/** A successful run's stdout, parsed (a `--json` run). */
export const okJson = <A = Record<string, unknown>>(run: CodexRun): A => JSON.parse(ok(run)) as A

/** A long-running `codex` (tail): its output so far, a wait for a line, and Ctrl-C. */
export interface RunningCodex {
  readonly output: () => { readonly stdout: string; readonly stderr: string }
  /** Waits until stdout has a line matching `pattern`; returns that line. */
  readonly line: (pattern: RegExp, what: string) => Effect.Effect<string>
  /** SIGINT, then its exit code. */
  readonly interrupt: Effect.Effect<number | null>
}

/** `codex <args>` running for the life of the scope (killed at its end if still running). */
export const startCodex = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>> = {}) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const { child, output } = spawnCodex(await bundledCli(), args, env, undefined)
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
      const running: RunningCodex = {
        output,
        line: (pattern, what) =>
          Effect.promise(() =>
            pollPromise(
              what,
              async () =>
                output()
                  .stdout.split("\n")
                  .find((line) => pattern.test(line)),
              (line): line is string => line !== undefined,
              { timeoutMs: 20_000, show: () => JSON.stringify(output()).slice(-800) }
            )
          ),
        interrupt: Effect.promise(() => {
          child.kill("SIGINT")
          return within("codex to exit after SIGINT", 10_000, exited)
        })
      }
      return { child, running }
    }),
    ({ child }) => Effect.sync(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"))
  ).pipe(Effect.map(({ running }) => running))
