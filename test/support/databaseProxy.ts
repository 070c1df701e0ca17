import { Context, Effect, Layer, Option, Redacted } from "effect"
import { startEmbeddedPostgres } from "../../layers/EmbeddedPostgres.ts"
import { startTcpProxy, type TcpProxy } from "./tcpProxy.ts"
import { TestDatabase, TestDatabaseLive } from "./testDatabase.ts"
import { makeTestServer, type TestServer } from "./testServer.ts"

/** The proxy between the test server and its database: `cut`, `stall` and `restore` take the database away. */
export class DatabaseProxy extends Context.Service<DatabaseProxy, TcpProxy>()("test/DatabaseProxy") {}

/**
 * The test server on a database it reaches through a TCP proxy the test controls: this file's database, or an
 * embedded one when no PostgreSQL server is around (the server migrates it at startup).
 */
export const testServerBehindProxy: Layer.Layer<TestServer | DatabaseProxy | TestDatabase, unknown> = Layer.unwrap(
  Effect.gen(function* () {
    const database = yield* TestDatabase
    let target: URL
    if (Option.isSome(database.url)) {
      target = new URL(database.url.value)
    } else {
      const embedded = yield* startEmbeddedPostgres("memory://")
      target = new URL(`postgres://postgres@127.0.0.1:${embedded.port}/postgres`)
    }
    const proxy = yield* startTcpProxy(Number(target.port || 5432))
    target.port = String(proxy.port)
    const server = makeTestServer({
      config: {
        databaseUrl: Option.some(Redacted.make(target.toString())),
        databasePoolMax: Option.isSome(database.url) ? 4 : 1
      }
    })
    return Layer.merge(server, Layer.succeed(DatabaseProxy, proxy))
  })
).pipe(Layer.provideMerge(TestDatabaseLive))
