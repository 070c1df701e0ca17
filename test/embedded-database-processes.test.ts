import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { lockFileName } from "../layers/DataDirectoryLock.ts"
import { listeningUrl } from "./support/apps.ts"
import {
  descendantsOf,
  isRunning,
  npm,
  operatorEnv,
  type ProcessResult,
  runToExit,
  type Service,
  startService
} from "./support/processes.ts"

/**
 * Issue 15, item 6, with real processes on one embedded database directory: while `npm start` runs on it, a second
 * server, `npm run migrate` and a second `npm start` exit 1 with one line naming the directory and the holder's PID;
 * a server killed with SIGKILL leaves a stale lock that the next start takes over; a graceful stop releases it.
 */

const readyTimeoutMs = 60_000
const runTimeoutMs = 60_000

/** What `npm start` would get, on `dataDir`, in development (the embedded database is the development default). */
const envOn = (dataDir: string) =>
  operatorEnv({
    APP_ENV: "development",
    HOST: "127.0.0.1",
    PORT: "0",
    LOG_FORMAT: "json",
    ACCESS_LOG: "false",
    DATABASE_URL: "",
    ENCRYPTION_KEYS: "",
    PGLITE_DIR: dataDir
  })

/** `node src/main.ts` on the directory, stopped (SIGKILL, and its children) if the test leaves it running. */
const startServer = (dataDir: string) =>
  Effect.acquireRelease(
    Effect.promise(() => startService("src/main.ts", envOn(dataDir), listeningUrl, readyTimeoutMs)),
    (server) =>
      Effect.promise(async () => {
        for (const pid of [...descendantsOf(server.child.pid ?? 0), server.child.pid ?? 0]) {
          if (isRunning(pid)) process.kill(pid, "SIGKILL")
        }
        await server.exited
      })
  )

const tempDataDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "codex-pglite-lock-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

const lockOwner = (dataDir: string) =>
  (JSON.parse(readFileSync(join(dataDir, lockFileName), "utf8")) as { readonly pid: number }).pid

const healthz = (server: Service<string>) =>
  Effect.promise(() => fetch(`${server.ready}/healthz`).then((r) => r.status))

const report = (result: ProcessResult) =>
  `exit ${result.code} after ${result.elapsedMs} ms\n--- stderr\n${result.stderr}--- stdout\n${result.stdout}`

/** The one line of a refused start: the directory, and the PID that holds it. */
const inUseLine = (dataDir: string, pid: number) =>
  new RegExp(
    `^startup failed: DataDirectoryInUse: the embedded database directory ${resolve(dataDir).replaceAll(/[.*+?^${}()|[\]\\]/g, "\\$&")} is in use by process ${pid} \\(since [0-9T:.Z-]+\\); stop it, or set PGLITE_DIR to another directory$`
  )

/** Exit 1 and exactly the in-use line on stderr (a process run directly: nothing of npm's in between). */
const assertRefused = (result: ProcessResult, dataDir: string, pid: number) => {
  assert.strictEqual(result.code, 1, report(result))
  const lines = result.stderr.trimEnd().split("\n")
  assert.strictEqual(lines.length, 1, report(result))
  assert.match(lines[0] ?? "", inUseLine(dataDir, pid), report(result))
}

describe("one embedded database directory, several processes", () => {
  it.effect(
    "while a server runs on it, a second server, npm run migrate and npm start exit 1 with one line naming its PID",
    () =>
      Effect.gen(function* () {
        const dataDir = yield* tempDataDir
        const first = yield* startServer(dataDir)
        const holder = first.child.pid ?? 0
        assert.strictEqual(lockOwner(dataDir), holder)

        const [server, migrate] = yield* Effect.promise(() =>
          Promise.all([
            runToExit("src/main.ts", envOn(dataDir), runTimeoutMs),
            runToExit("src/migrate.ts", envOn(dataDir), runTimeoutMs)
          ])
        )
        assertRefused(server, dataDir, holder)
        assertRefused(migrate, dataDir, holder)

        // Through npm, as the operator types it: npm passes the exit code on, and the line is in what it prints.
        const viaNpm = yield* Effect.promise(() => runToExit(npm(["start"]), envOn(dataDir), runTimeoutMs))
        assert.strictEqual(viaNpm.code, 1, report(viaNpm))
        assert.match(viaNpm.stderr.split("\n")[0] ?? "", inUseLine(dataDir, holder), report(viaNpm))

        // The holder never noticed.
        assert.strictEqual(yield* healthz(first), 200)
        assert.strictEqual(lockOwner(dataDir), holder)
      }).pipe(Effect.scoped),
    180_000
  )

  it.effect(
    "a server killed with SIGKILL leaves a stale lock: the next start takes it over, on the same data; a graceful stop releases it",
    () =>
      Effect.gen(function* () {
        const dataDir = yield* tempDataDir
        const crashed = yield* startServer(dataDir)
        const crashedPid = crashed.child.pid ?? 0
        assert.match(crashed.output().stdout, /API key: ck_/, "the first start seeds the demo tenant")
        crashed.child.kill("SIGKILL")
        // "exit" fires once Node has reaped the child: its PID is free (or, later, someone else's).
        yield* Effect.promise(() => crashed.exited)
        assert.strictEqual(lockOwner(dataDir), crashedPid, "nothing ran to remove the lock")

        const next = yield* startServer(dataDir)
        const nextPid = next.child.pid ?? 0
        assert.strictEqual(lockOwner(dataDir), nextPid)
        const warnings = next.logs().filter((entry) => String(entry.message).startsWith("embedded database: took over"))
        assert.deepStrictEqual(
          warnings.map((entry) => [entry.level, entry.message]),
          [
            [
              "warn",
              `embedded database: took over the lock of process ${crashedPid}, which is no longer running (it did not shut down cleanly)`
            ]
          ]
        )
        assert.strictEqual(yield* healthz(next), 200)
        assert.notMatch(next.output().stdout, /API key/, "the same database: the demo tenant is already there")

        next.child.kill("SIGTERM")
        const exit = yield* Effect.promise(() => next.exited)
        assert.strictEqual(exit.code, 0, next.output().stderr)
        assert.isFalse(existsSync(join(dataDir, lockFileName)), "released on a graceful stop")
      }).pipe(Effect.scoped),
    180_000
  )
})
