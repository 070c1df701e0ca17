import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { hostname, tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Logger, Scope } from "effect"
import { lockDataDirectory, lockFileName } from "../layers/DataDirectoryLock.ts"
import { jsonLogger } from "../layers/LoggerLive.ts"
import { makeMemorySink } from "../layers/LogSinkLive.ts"

/**
 * Issue 15, item 6, in process: the lock on an embedded database directory (layers/DataDirectoryLock.ts). The same
 * lock taken by real `npm start` / `npm run migrate` processes is tested in test/embedded-database-processes.test.ts.
 */

const tempDir = () => mkdtempSync(join(tmpdir(), "codex-lock-"))

const lockOf = (dir: string): { pid: number; hostname: string; startedAt: string } =>
  JSON.parse(readFileSync(join(dir, lockFileName), "utf8")) as { pid: number; hostname: string; startedAt: string }

const writeLock = (dir: string, owner: { pid: number; hostname?: string; startedAt?: string }) =>
  writeFileSync(
    join(dir, lockFileName),
    JSON.stringify({ hostname: hostname(), startedAt: "2026-01-01T00:00:00.000Z", ...owner })
  )

/** Takes the lock in a scope of its own, with the log lines it writes; close the scope to release it. */
const lockInScope = (dir: string) =>
  Effect.gen(function* () {
    const sink = makeMemorySink()
    const scope = yield* Scope.make()
    const exit = yield* lockDataDirectory(dir).pipe(
      Scope.provide(scope),
      Effect.provide(Logger.layer([jsonLogger(sink)])),
      Effect.exit
    )
    const logs = sink.lines.map((line) => JSON.parse(line) as { level: string; message: string })
    return { exit, logs, release: Scope.close(scope, Exit.void) }
  })

/** The failure's message (the line the process prints), or a test failure when the lock was taken. */
const failureMessage = (exit: Exit.Exit<void, { readonly _tag: string; readonly message: string }>): string => {
  if (Exit.isSuccess(exit)) return assert.fail("the lock was taken")
  const [reason] = exit.cause.reasons
  return reason !== undefined && reason._tag === "Fail" ? `${reason.error._tag}: ${reason.error.message}` : "no failure"
}

/** A process that stays alive until killed: a live PID that is not ours. */
const liveProcess = () =>
  Effect.acquireRelease(
    Effect.sync(() => spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" })),
    (child) => Effect.sync(() => child.kill("SIGKILL"))
  )

/** The PID of a process that has exited and been reaped (Node reaps before it emits "exit"). */
const deadPid = () =>
  Effect.promise(
    () =>
      new Promise<number>((resolve, reject) => {
        const child: ChildProcess = spawn(process.execPath, ["-e", ""], { stdio: "ignore" })
        child.once("error", reject)
        child.once("exit", () => (child.pid === undefined ? reject(new Error("no pid")) : resolve(child.pid)))
      })
  )

describe("lockDataDirectory", () => {
  it.effect("writes {pid, hostname, startedAt}, refuses a second holder, and removes the file on release", () =>
    Effect.gen(function* () {
      const dir = tempDir()
      const first = yield* lockInScope(dir)
      assert.isTrue(Exit.isSuccess(first.exit))
      const owner = lockOf(dir)
      assert.strictEqual(owner.pid, process.pid)
      assert.strictEqual(owner.hostname, hostname())
      assert.isBelow(Math.abs(Date.parse(owner.startedAt) - Date.now()), 60_000)

      // This very process opening it again is a second holder too.
      const second = yield* lockInScope(dir)
      assert.strictEqual(
        failureMessage(second.exit),
        `DataDirectoryInUse: the embedded database directory ${dir} is in use by process ${process.pid} (since ${owner.startedAt}); stop it, or set PGLITE_DIR to another directory`
      )
      assert.deepStrictEqual(lockOf(dir), owner, "the holder's lock is untouched")

      yield* first.release
      assert.isFalse(existsSync(join(dir, lockFileName)))
      assert.deepStrictEqual(readdirSync(dir), [], "no staging files are left behind")
      const again = yield* lockInScope(dir)
      assert.isTrue(Exit.isSuccess(again.exit), "free again once released")
      yield* again.release
      rmSync(dir, { recursive: true })
    })
  )

  it.effect("a lock held by another live process is refused, naming its PID", () =>
    Effect.gen(function* () {
      const dir = tempDir()
      const holder = yield* liveProcess()
      assert.isDefined(holder.pid)
      writeLock(dir, { pid: holder.pid ?? 0 })
      const attempt = yield* lockInScope(dir)
      assert.match(
        failureMessage(attempt.exit),
        new RegExp(
          `^DataDirectoryInUse: the embedded database directory .* is in use by process ${holder.pid} \\(since `
        )
      )
      assert.strictEqual(lockOf(dir).pid, holder.pid)
      rmSync(dir, { recursive: true })
    }).pipe(Effect.scoped)
  )

  it.effect("a stale lock (its process is gone) is taken over, with one warning naming the old PID", () =>
    Effect.gen(function* () {
      const dir = tempDir()
      const pid = yield* deadPid()
      writeLock(dir, { pid })
      const taken = yield* lockInScope(dir)
      assert.isTrue(Exit.isSuccess(taken.exit))
      assert.strictEqual(lockOf(dir).pid, process.pid)
      assert.deepStrictEqual(
        taken.logs.map((l) => [l.level, l.message]),
        [
          [
            "warn",
            `embedded database: took over the lock of process ${pid}, which is no longer running (it did not shut down cleanly)`
          ]
        ]
      )
      assert.deepStrictEqual(readdirSync(dir), [lockFileName], "the stale lock is not kept aside")
      yield* taken.release
      rmSync(dir, { recursive: true })
    })
  )

  it.effect("our own PID in a lock we do not hold is a previous life of this PID (a restarted container)", () =>
    Effect.gen(function* () {
      const dir = tempDir()
      writeLock(dir, { pid: process.pid, startedAt: "2020-01-01T00:00:00.000Z" })
      const taken = yield* lockInScope(dir)
      assert.isTrue(Exit.isSuccess(taken.exit))
      assert.notStrictEqual(lockOf(dir).startedAt, "2020-01-01T00:00:00.000Z")
      yield* taken.release
      rmSync(dir, { recursive: true })
    })
  )

  it.effect("a lock written on another host is never taken over: that process cannot be checked from here", () =>
    Effect.gen(function* () {
      const dir = tempDir()
      writeLock(dir, { pid: 4242, hostname: "builder-7" })
      const attempt = yield* lockInScope(dir)
      assert.strictEqual(
        failureMessage(attempt.exit),
        `DataDirectoryInUse: the embedded database directory ${dir} is in use by process 4242 on host builder-7 (since 2026-01-01T00:00:00.000Z); if that process is gone, delete ${join(dir, lockFileName)}`
      )
      assert.strictEqual(lockOf(dir).hostname, "builder-7")
      rmSync(dir, { recursive: true })
    })
  )

  it.effect("an unreadable lock file names no holder and is replaced", () =>
    Effect.gen(function* () {
      const dir = tempDir()
      writeFileSync(join(dir, lockFileName), "")
      const taken = yield* lockInScope(dir)
      assert.isTrue(Exit.isSuccess(taken.exit))
      assert.strictEqual(lockOf(dir).pid, process.pid)
      assert.deepStrictEqual(
        taken.logs.map((l) => l.message),
        ["embedded database: replaced an unreadable lock file"]
      )
      yield* taken.release
      rmSync(dir, { recursive: true })
    })
  )

  it.effect("release leaves a lock that is no longer ours in place", () =>
    Effect.gen(function* () {
      const dir = tempDir()
      const taken = yield* lockInScope(dir)
      assert.isTrue(Exit.isSuccess(taken.exit))
      writeLock(dir, { pid: 4242, hostname: "builder-7" })
      yield* taken.release
      assert.strictEqual(lockOf(dir).hostname, "builder-7")
      rmSync(dir, { recursive: true })
    })
  )
})
