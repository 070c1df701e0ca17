import { randomBytes } from "node:crypto"
import { linkSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs"
import { hostname } from "node:os"
import { join } from "node:path"
import { Effect, Schema, type Scope } from "effect"

/** The lock file, inside the data directory it guards (PGlite ignores files it does not know). */
export const lockFileName = "codex.lock"

/** Who holds a directory: written into the lock file as JSON. */
const LockOwner = Schema.Struct({ pid: Schema.Int, hostname: Schema.String, startedAt: Schema.String })
type LockOwner = typeof LockOwner.Type
const decodeOwner = Schema.decodeUnknownOption(Schema.fromJsonString(LockOwner))

/** Another process (alive, or on another host) holds the directory. */
export class DataDirectoryInUse extends Schema.TaggedError<DataDirectoryInUse>()("DataDirectoryInUse", {
  message: Schema.String,
  pid: Schema.Int,
  hostname: Schema.String
}) {}

/** The lock file could not be written or read (permissions, a read-only or full disk). */
export class DataDirectoryLockError extends Schema.TaggedError<DataDirectoryLockError>()("DataDirectoryLockError", {
  message: Schema.String,
  cause: Schema.Defect()
}) {}

const errorCode = (error: unknown): string | undefined =>
  typeof error === "object" && error !== null && "code" in error && typeof error.code === "string"
    ? error.code
    : undefined

/**
 * A zombie (exited, not yet reaped by its parent) still answers signal 0. Linux shows its state in /proc; elsewhere
 * this cannot tell, and the zombie counts as alive until it is reaped.
 */
const isZombie = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // `pid (comm) state ...`: comm may contain spaces and parentheses, so read after the last ")".
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z"
  } catch {
    return false
  }
}

/** Whether a process with this PID runs on this host (EPERM: it does, under another user). */
const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return !isZombie(pid)
  } catch (error) {
    return errorCode(error) === "EPERM" && !isZombie(pid)
  }
}

/** Directories this process holds: a second open from the same process is refused like any other. */
const heldHere = new Set<string>()

/**
 * Creates the lock file with its whole content at once, or reports that it exists: the content is written to a file
 * of our own, then hard-linked to the lock's name (link fails if the name exists). A reader therefore never sees a
 * half-written lock. File systems without hard links get an O_EXCL create instead.
 */
const createLockFile = (lockPath: string, content: string): "created" | "exists" => {
  const staging = `${lockPath}.${process.pid}.${randomBytes(4).toString("hex")}`
  writeFileSync(staging, content, { flag: "wx" })
  try {
    linkSync(staging, lockPath)
    return "created"
  } catch (error) {
    const code = errorCode(error)
    if (code === "EEXIST") return "exists"
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "ENOSYS") throw error
    try {
      writeFileSync(lockPath, content, { flag: "wx" })
      return "created"
    } catch (fallbackError) {
      if (errorCode(fallbackError) === "EEXIST") return "exists"
      throw fallbackError
    }
  } finally {
    unlinkSync(staging)
  }
}

/** The lock file's text, or undefined when it is gone (released meanwhile). */
const readLockFile = (lockPath: string): string | undefined => {
  try {
    return readFileSync(lockPath, "utf8")
  } catch (error) {
    if (errorCode(error) === "ENOENT") return undefined
    throw error
  }
}

type Verdict =
  | { readonly _tag: "Acquired" }
  | { readonly _tag: "Retry" }
  | { readonly _tag: "Held"; readonly owner: LockOwner; readonly otherHost: boolean }
  | { readonly _tag: "TookOver"; readonly previous: LockOwner | undefined }

/**
 * Removes a stale lock, provided it is still the one judged stale: it is renamed to a name of our own first, so two
 * processes taking over at once cannot both remove it, and if the renamed file turns out to be a fresh lock (someone
 * took over just before us), it is put back.
 */
const removeStale = (lockPath: string, staleText: string): boolean => {
  const aside = `${lockPath}.stale.${process.pid}.${randomBytes(4).toString("hex")}`
  try {
    renameSync(lockPath, aside)
  } catch (error) {
    if (errorCode(error) === "ENOENT") return false
    throw error
  }
  const moved = readFileSync(aside, "utf8")
  if (moved !== staleText) {
    try {
      linkSync(aside, lockPath)
    } catch {
      // A third process created a lock meanwhile: it holds the directory, and the one moved aside is lost. Both
      // were started within the same milliseconds; the next attempt reports the holder.
    }
    unlinkSync(aside)
    return false
  }
  unlinkSync(aside)
  return true
}

const attempt = (lockPath: string, content: string, host: string): Verdict => {
  if (createLockFile(lockPath, content) === "created") return { _tag: "Acquired" }
  const text = readLockFile(lockPath)
  if (text === undefined) return { _tag: "Retry" }
  const owner = decodeOwner(text)
  // Unreadable content cannot name a holder: no process of ours writes it (the content appears whole), so it is junk.
  if (owner._tag === "Some") {
    const { pid } = owner.value
    if (owner.value.hostname !== host) return { _tag: "Held", owner: owner.value, otherHost: true }
    // Our own PID in the file is a previous life of this PID (a container restarted with the same PID), unless this
    // very process holds the directory.
    if (pid === process.pid ? heldHere.has(lockPath) : isAlive(pid)) {
      return { _tag: "Held", owner: owner.value, otherHost: false }
    }
  }
  if (!removeStale(lockPath, text)) return { _tag: "Retry" }
  if (createLockFile(lockPath, content) === "exists") return { _tag: "Retry" }
  return { _tag: "TookOver", previous: owner._tag === "Some" ? owner.value : undefined }
}

const inUse = (directory: string, lockPath: string, owner: LockOwner, otherHost: boolean) =>
  new DataDirectoryInUse({
    message: otherHost
      ? `the embedded database directory ${directory} is in use by process ${owner.pid} on host ${owner.hostname} (since ${owner.startedAt}); if that process is gone, delete ${lockPath}`
      : `the embedded database directory ${directory} is in use by process ${owner.pid} (since ${owner.startedAt}); stop it, or set PGLITE_DIR to another directory`,
    pid: owner.pid,
    hostname: owner.hostname
  })

/** Removes the lock file if it is still ours. */
const release = (lockPath: string, content: string): void => {
  heldHere.delete(lockPath)
  try {
    if (readFileSync(lockPath, "utf8") === content) unlinkSync(lockPath)
  } catch {
    // Already gone: nothing to release.
  }
}

/**
 * An exclusive lock on a data directory (`<directory>/codex.lock`, holding `{ pid, hostname, startedAt }`), held for
 * the scope: a second process opening the directory fails with `DataDirectoryInUse` naming the holder's PID. A lock
 * left by a process that is gone (a crash, SIGKILL) is taken over, with a warning. A lock written on another host is
 * never taken over: that process cannot be checked from here.
 *
 * Limitation: a PID is not an identity. If the holder died and its PID now belongs to another process, the directory
 * reads as in use until that process ends or the lock file is deleted by hand (the error names both).
 */
export const lockDataDirectory = (
  directory: string
): Effect.Effect<void, DataDirectoryInUse | DataDirectoryLockError, Scope.Scope> => {
  const lockPath = join(directory, lockFileName)
  const host = hostname()
  return Effect.acquireRelease(
    Effect.gen(function* () {
      const content = JSON.stringify({ pid: process.pid, hostname: host, startedAt: new Date().toISOString() })
      // Each retry follows a lock that changed hands meanwhile; a handful settles any realistic race.
      for (let round = 0; round < 5; round++) {
        const verdict = yield* Effect.try({
          try: () => attempt(lockPath, content, host),
          catch: (cause) =>
            new DataDirectoryLockError({ message: `cannot lock the embedded database directory ${directory}`, cause })
        })
        switch (verdict._tag) {
          case "Retry":
            continue
          case "Held":
            return yield* inUse(directory, lockPath, verdict.owner, verdict.otherHost)
          case "TookOver":
            yield* Effect.logWarning(
              verdict.previous === undefined
                ? "embedded database: replaced an unreadable lock file"
                : `embedded database: took over the lock of process ${verdict.previous.pid}, which is no longer running (it did not shut down cleanly)`
            ).pipe(Effect.annotateLogs({ pgliteDir: directory }))
        }
        heldHere.add(lockPath)
        // Exits that skip finalizers (process.exit on a second signal or a shutdown overrun) still free the directory.
        const onExit = () => release(lockPath, content)
        process.once("exit", onExit)
        return { content, onExit }
      }
      return yield* new DataDirectoryLockError({
        message: `cannot lock the embedded database directory ${directory}: its lock kept changing hands`,
        cause: undefined
      })
    }),
    ({ content, onExit }) =>
      Effect.sync(() => {
        process.off("exit", onExit)
        release(lockPath, content)
      })
  ).pipe(Effect.asVoid)
}
