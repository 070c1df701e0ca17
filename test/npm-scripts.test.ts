import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, layer } from "@effect/vitest"
import { Effect, Option } from "effect"
import { lockFileName } from "../layers/DataDirectoryLock.ts"
import { testEncryptionKeysEnv } from "./support/appConfig.ts"
import { listeningUrl } from "./support/apps.ts"
import { within } from "./support/poll.ts"
import {
  commandLineOf,
  descendantsOf,
  isRunning,
  npm,
  operatorEnv,
  type Service,
  startService
} from "./support/processes.ts"
import { TestDatabase, TestDatabaseLive } from "./support/testDatabase.ts"

/**
 * Issue 15, item 5: the README's commands under a supervisor. `npm start`, `npm run worker` and `npm run dev` run
 * exactly as an operator types them (the system's npm, from the package root); a SIGTERM to npm's PID must stop the
 * process gracefully and npm must exit with its code, leaving nothing behind. npm forwards SIGTERM/SIGINT to the
 * script's process; before the scripts said `exec`, that process was `sh -c`, which died and left node serving.
 */

/** Startup on the embedded database takes seconds (WASM), more on a loaded machine. */
const readyTimeoutMs = 60_000
/** A graceful stop of an idle process is well under a second; the bound allows for a loaded machine. */
const stopTimeoutMs = 15_000

/** `npm <script>` on a fresh embedded database directory, once it logs `listening`. */
const startNpmServer = (args: ReadonlyArray<string>, options: { readonly detached?: boolean } = {}) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const dataDir = mkdtempSync(join(tmpdir(), "codex-npm-"))
      const env = operatorEnv({
        APP_ENV: "development",
        HOST: "127.0.0.1",
        PORT: "0",
        LOG_FORMAT: "json",
        ACCESS_LOG: "false",
        DATABASE_URL: "",
        PGLITE_DIR: dataDir
      })
      const service = await startService(npm(args, options), env, listeningUrl, readyTimeoutMs)
      return { service, dataDir, started: descendantsOf(service.child.pid ?? 0) }
    }),
    ({ service, dataDir, started }) =>
      Effect.promise(async () => {
        await killLeftovers(service, started)
        rmSync(dataDir, { recursive: true, force: true })
      })
  )

/**
 * Whatever a failed test left running: npm and every process it had started, including one that npm's exit
 * re-parented (the bug this file is about), so none outlives the test.
 */
const killLeftovers = async (service: Service<unknown>, started: ReadonlyArray<number>) => {
  for (const pid of [...started, ...descendantsOf(service.child.pid ?? 0), service.child.pid ?? 0]) {
    if (isRunning(pid)) process.kill(pid, "SIGKILL")
  }
  await service.exited
}

/** What npm started, as `ps` would show it: recorded before the signal, checked after npm's exit. */
const processesOf = (service: Service<unknown>) => {
  const pids = descendantsOf(service.child.pid ?? 0)
  return { pids, commandLines: pids.map(commandLineOf) }
}

/**
 * The V8 flags `npm start` and `npm run dev` give node for the embedded database's memory (README, "The embedded
 * database"): no TurboFan tier-up of PGlite's WebAssembly, and the container's young generation.
 */
const embeddedDatabaseFlags = "--liftoff-only --max-semi-space-size=8"

/**
 * npm's one child is the node process itself (`args`: its arguments): `exec` replaced the shell that would not pass
 * signals on.
 */
const assertNodeIsNpmsChild = (started: ReturnType<typeof processesOf>, args: string) => {
  assert.deepStrictEqual(
    started.commandLines.map((line) => line.replace(/^\S*node /, "node ")),
    [`node ${args}`],
    "npm's only child is node"
  )
}

/** Waits for npm's exit within the deadline; every process it started must be gone by then. */
const exitOf = (service: Service<unknown>, leftovers: ReadonlyArray<number>) =>
  Effect.promise(async () => {
    const started = performance.now()
    const exit = await within("npm to exit", stopTimeoutMs, service.exited)
    const elapsedMs = performance.now() - started
    for (const pid of leftovers) assert.isFalse(isRunning(pid), `process ${pid} still runs after npm exited`)
    return { ...exit, elapsedMs }
  })

const shutdownComplete = (service: Service<unknown>) =>
  service.logs().some((entry) => entry.message === "shutdown: closing the database pool; shutdown complete")

const report = (service: Service<unknown>) => {
  const { stdout, stderr } = service.output()
  return `--- stderr\n${stderr}--- stdout\n${stdout}`
}

layer(TestDatabaseLive)("npm scripts under a supervisor", (it) => {
  it.effect(
    "npm start: SIGTERM to npm's PID drains the server, npm exits 0, and the node process is gone",
    () =>
      Effect.gen(function* () {
        const { service, dataDir } = yield* startNpmServer(["start"])
        const started = processesOf(service)
        const health = yield* Effect.promise(() => fetch(`${service.ready}/healthz`))
        assert.strictEqual(health.status, 200)

        service.child.kill("SIGTERM")
        const exit = yield* exitOf(service, started.pids)
        assert.strictEqual(exit.code, 0, report(service))
        assert.isTrue(shutdownComplete(service), report(service))
        assert.isFalse(existsSync(join(dataDir, lockFileName)), "the embedded database directory is released")
        assertNodeIsNpmsChild(started, `${embeddedDatabaseFlags} src/main.ts`)
        console.log(`[npm] npm start, SIGTERM to npm: exit 0 after ${exit.elapsedMs.toFixed(0)} ms`)
      }).pipe(Effect.scoped),
    90_000
  )

  it.effect(
    "npm start: SIGINT to the whole process group (Ctrl-C) reaches node twice, directly and through npm: still one graceful stop, exit 0",
    () =>
      Effect.gen(function* () {
        const { service } = yield* startNpmServer(["start"], { detached: true })
        const started = processesOf(service)
        process.kill(-(service.child.pid ?? 0), "SIGINT")
        const exit = yield* exitOf(service, started.pids)
        assert.strictEqual(exit.code, 0, report(service))
        assert.isTrue(shutdownComplete(service), report(service))
        assert.isFalse(
          service.logs().some((entry) => entry.message === "shutdown: second signal, exiting now"),
          "npm's forwarded copy is not a second signal"
        )
      }).pipe(Effect.scoped),
    90_000
  )

  it.effect(
    "npm start: SIGTERM to the whole process group (systemd's KillMode=control-group): exit 0",
    () =>
      Effect.gen(function* () {
        const { service } = yield* startNpmServer(["start"], { detached: true })
        const started = processesOf(service)
        process.kill(-(service.child.pid ?? 0), "SIGTERM")
        const exit = yield* exitOf(service, started.pids)
        assert.strictEqual(exit.code, 0, report(service))
        assert.isTrue(shutdownComplete(service), report(service))
      }).pipe(Effect.scoped),
    90_000
  )

  it.effect(
    "npm run dev (node --watch): SIGTERM to npm's PID stops the watcher and the server, exit 0",
    () =>
      Effect.gen(function* () {
        const { service } = yield* startNpmServer(["run", "dev"])
        const started = processesOf(service)
        service.child.kill("SIGTERM")
        const exit = yield* exitOf(service, started.pids)
        assert.strictEqual(exit.code, 0, report(service))
        assert.isTrue(shutdownComplete(service), report(service))
        // The watcher, and the server it restarts on change.
        assert.deepStrictEqual(
          started.commandLines.map((line) => line.replace(/^\S*node /, "node ")),
          [`node --watch ${embeddedDatabaseFlags} src/main.ts`, `node ${embeddedDatabaseFlags} src/main.ts`]
        )
      }).pipe(Effect.scoped),
    90_000
  )

  it.effect(
    "npm run worker: SIGTERM to npm's PID stops the worker gracefully, exit 0",
    () =>
      Effect.gen(function* () {
        const database = yield* TestDatabase
        const dataDir = mkdtempSync(join(tmpdir(), "codex-npm-worker-"))
        const { service } = yield* Effect.acquireRelease(
          Effect.promise(async () => {
            const service = await startService(
              npm(["run", "worker"]),
              operatorEnv({
                APP_ENV: "development",
                LOG_FORMAT: "json",
                // PostgreSQL when the suite has a server; else the worker embeds a database of its own.
                DATABASE_URL: Option.getOrElse(database.url, () => ""),
                PGLITE_DIR: dataDir,
                ENCRYPTION_KEYS: testEncryptionKeysEnv
              }),
              (entry) => (entry.message === "delivery worker started" ? true : undefined),
              readyTimeoutMs
            )
            return { service, started: descendantsOf(service.child.pid ?? 0) }
          }),
          ({ service, started }) =>
            Effect.promise(async () => {
              await killLeftovers(service, started)
              rmSync(dataDir, { recursive: true, force: true })
            })
        )
        const started = processesOf(service)
        service.child.kill("SIGTERM")
        const exit = yield* exitOf(service, started.pids)
        assert.strictEqual(exit.code, 0, report(service))
        assert.isTrue(
          service.logs().some((entry) => entry.message === "delivery worker: stopped"),
          report(service)
        )
        assertNodeIsNpmsChild(started, "src/worker.ts")
      }).pipe(Effect.scoped),
    90_000
  )
})
