import { mkdirSync } from "node:fs"
import { resolve } from "node:path"
import { PGlite } from "@electric-sql/pglite"
import { PGLiteSocketServer } from "@electric-sql/pglite-socket"
import type { Scope } from "effect"
import { Effect, Schema } from "effect"

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
 * One data directory must never be opened by two processes.
 */
export const startEmbeddedPostgres = (
  dataDir: string
): Effect.Effect<EmbeddedPostgresAddress, EmbeddedPostgresError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const location = dataDir === "memory://" ? undefined : resolve(dataDir)
        if (location !== undefined) mkdirSync(location, { recursive: true })
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
  ).pipe(
    Effect.map(({ server }) => {
      const conn = server.getServerConn()
      const port = Number(conn.slice(conn.lastIndexOf(":") + 1))
      return { host: "127.0.0.1", port }
    })
  )
