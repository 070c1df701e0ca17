import { mkdirSync } from "node:fs"
import { resolve } from "node:path"
import { PGlite } from "@electric-sql/pglite"
import { PGLiteSocketServer } from "@electric-sql/pglite-socket"
import type { Scope } from "effect"
import { Effect, Schema } from "effect"
import { type DataDirectoryInUse, type DataDirectoryLockError, lockDataDirectory } from "./DataDirectoryLock.ts"

export class EmbeddedPostgresError extends Schema.TaggedError<EmbeddedPostgresError>()("EmbeddedPostgresError", {
  message: Schema.String,
  cause: Schema.Defect()
}) {}

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
    }
    const { server } = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          const db = await PGlite.create(location)
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
