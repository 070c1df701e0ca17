import { mkdirSync } from "node:fs"
import { resolve } from "node:path"
import { PGlite } from "@electric-sql/pglite"
import { PGLiteSocketServer } from "@electric-sql/pglite-socket"
import type { Scope } from "effect"
import { Effect, Schema } from "effect"
import { type DataDirectoryInUse, type DataDirectoryLockError, lockDataDirectory } from "./DataDirectoryLock.ts"
import { initialiseInChild, isInitialised } from "./EmbeddedPostgresInit.ts"

export class EmbeddedPostgresError extends Schema.TaggedError<EmbeddedPostgresError>()("EmbeddedPostgresError", {
  message: Schema.String,
  cause: Schema.Defect()
}) {}

/**
 * The PostgreSQL settings the embedded database runs with, beyond PGlite's own (`PGlite.defaultStartParams`).
 *
 * `shared_buffers`: PGlite allocates the buffer pool inside its WebAssembly memory, and all of it is resident from
 * the start: PostgreSQL's default of 128 MB grew that memory to 188 MB, 151 MB of it resident before the first query
 * (29 MB with 16 MB), plus 4 MB of `wal_buffers` (1/32 of it). A development database of a few thousand rows fits in 16 MB; pages beyond that are read
 * back from the data directory (the OS page cache) or, with `memory://`, from the in-memory file system. `wal_buffers`
 * follows (512 kB). See bench/startup.ts for the resident memory it saves.
 */
export const embeddedPostgresSettings: Readonly<Record<string, string>> = {
  shared_buffers: "16MB"
}

/** `PGlite.defaultStartParams` followed by `-c name=value` for each of `embeddedPostgresSettings`. */
const startParams = (): Array<string> => [
  ...PGlite.defaultStartParams,
  ...Object.entries(embeddedPostgresSettings).flatMap(([name, value]) => ["-c", `${name}=${value}`])
]

/**
 * In-memory databases after the second of a process load a gzip image of a freshly initialised data directory (4.5 MB)
 * instead of running initdb again: ~0.7 s instead of ~2.5 s of CPU each. The second one takes the image (~0.5 s),
 * so a process that starts only one (a server on `memory://`) never pays for it; the tests start many (one per test
 * server). A data directory on disk is initialised once anyway.
 */
let inMemoryStarted = 0
let freshImage: Promise<Blob> | undefined

/** A new, empty in-memory PGlite with the embedded settings. */
export const freshInMemoryDatabase = async (): Promise<PGlite> => {
  const image = freshImage
  if (image !== undefined) {
    const loaded = await image.then(
      (dump) => PGlite.create(undefined, { loadDataDir: dump, startParams: startParams() }),
      () => undefined
    )
    if (loaded !== undefined) return loaded
  }
  const db = await PGlite.create(undefined, { startParams: startParams() })
  inMemoryStarted++
  if (image === undefined && inMemoryStarted >= 2) {
    // Taken before anything is written; a failed dump only means the next database runs initdb itself.
    freshImage = db.dumpDataDir("gzip")
    freshImage.catch(() => {
      freshImage = undefined
    })
    await freshImage.catch(() => undefined)
  }
  return db
}

export interface EmbeddedPostgresAddress {
  readonly host: string
  readonly port: number
}

/**
 * Starts PGlite (PostgreSQL compiled to WASM, in this process) and serves it over a loopback socket, so the app talks
 * to it through the same `@effect/sql-pg` client as to a real server. Every connection is serialised onto the one
 * PGlite instance: callers must use a pool of exactly one connection. `memory://` keeps nothing on disk.
 * A data directory on disk is locked for as long as the database is open (DataDirectoryLock): two processes writing
 * one directory would corrupt it.
 */
export const startEmbeddedPostgres = (
  dataDir: string
): Effect.Effect<
  EmbeddedPostgresAddress,
  EmbeddedPostgresError | DataDirectoryInUse | DataDirectoryLockError,
  Scope.Scope
> =>
  Effect.gen(function* () {
    const location = dataDir === "memory://" ? undefined : resolve(dataDir)
    if (location !== undefined) {
      yield* Effect.try({
        try: () => mkdirSync(location, { recursive: true }),
        catch: (cause) => new EmbeddedPostgresError({ message: `cannot create the directory ${location}`, cause })
      })
      // Taken before PGlite opens the directory and released after it has closed it (finalizers run in reverse).
      yield* lockDataDirectory(location)
      // A first boot: initdb runs in a child process (see EmbeddedPostgresInit.ts), so this one opens it warm.
      if (!isInitialised(location)) {
        yield* initialiseInChild(
          location,
          startParams(),
          (message, cause) => new EmbeddedPostgresError({ message, cause })
        )
        yield* Effect.logInfo("embedded database: data directory initialised").pipe(
          Effect.annotateLogs({ dataDir: location })
        )
      }
    }
    const { server } = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          const db =
            location === undefined
              ? await freshInMemoryDatabase()
              : await PGlite.create(location, { startParams: startParams() })
          const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections: 1 })
          await server.start()
          return { db, server }
        },
        catch: (cause) =>
          new EmbeddedPostgresError({ message: `cannot start the embedded database in ${dataDir}`, cause })
      }),
      ({ db, server }) =>
        Effect.promise(async () => {
          await server.stop()
          await db.close()
        })
    )
    const conn = server.getServerConn()
    const port = Number(conn.slice(conn.lastIndexOf(":") + 1))
    return { host: "127.0.0.1", port }
  })
