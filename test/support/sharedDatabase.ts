import { PgClient } from "@effect/sql-pg"
import { PGLiteSocketServer } from "@electric-sql/pglite-socket"
import { Context, Effect, Layer, Option, Redacted } from "effect"
import type { SqlClient } from "effect/sql"
import { freshInMemoryDatabase } from "../../layers/EmbeddedPostgres.ts"
import { TestDatabase, TestDatabaseLive } from "./testDatabase.ts"
import { makeTestServer, type TestServer, type TestServerOptions } from "./testServer.ts"

export interface SharedDatabaseShape {
  /** A PostgreSQL URL that the test server and the test itself both connect to. */
  readonly url: string
  /** Pool size for each of the two clients (1 on PGlite, which runs every query on one session). */
  readonly poolMax: number
}

/** One database reachable by URL from both the server under test and the test (to inspect rows directly). */
export class SharedDatabase extends Context.Service<SharedDatabase, SharedDatabaseShape>()("test/SharedDatabase") {}

/**
 * This file's cloned database on PostgreSQL. On PGlite the server normally embeds a database nobody else can reach,
 * so here one in-memory PGlite is served on a loopback socket that accepts two connections: the server's pool of one
 * and the test's. PGlite serialises their queries on one session: only query it while no request is in flight.
 */
export const SharedDatabaseLive: Layer.Layer<SharedDatabase, unknown, TestDatabase> = Layer.effect(
  SharedDatabase,
  Effect.gen(function* () {
    const database = yield* TestDatabase
    if (Option.isSome(database.url)) return { url: database.url.value, poolMax: 4 }
    const port = yield* Effect.acquireRelease(
      Effect.promise(async () => {
        const db = await freshInMemoryDatabase()
        const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections: 2 })
        await server.start()
        const conn = server.getServerConn()
        return { db, server, port: Number(conn.slice(conn.lastIndexOf(":") + 1)) }
      }),
      ({ db, server }) =>
        Effect.promise(async () => {
          await server.stop()
          await db.close()
        })
    ).pipe(Effect.map(({ port }) => port))
    return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, poolMax: 1 }
  })
)

/**
 * The test server (which migrates the database at startup) plus a `SqlClient` on the very same database, built after
 * the server so the schema is there. `options.config` may not override the database settings.
 */
export const testServerWithSql = (
  options: TestServerOptions = {}
): Layer.Layer<TestServer | SqlClient.SqlClient | SharedDatabase | TestDatabase, unknown> =>
  Layer.unwrap(
    Effect.gen(function* () {
      const shared = yield* SharedDatabase
      const server = makeTestServer({
        ...options,
        config: {
          ...options.config,
          databaseUrl: Option.some(Redacted.make(shared.url)),
          databasePoolMax: shared.poolMax
        }
      })
      const sql = PgClient.layer({ url: Redacted.make(shared.url), maxConnections: shared.poolMax })
      return sql.pipe(Layer.provideMerge(server))
    })
  ).pipe(Layer.provideMerge(SharedDatabaseLive), Layer.provideMerge(TestDatabaseLive))
