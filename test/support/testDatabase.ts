import { randomBytes } from "node:crypto"
import { PgClient } from "@effect/sql-pg"
import { Context, Effect, Layer, Option, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { inject } from "vitest"
import { startEmbeddedPostgres } from "../../layers/EmbeddedPostgres.ts"
import { runMigrations } from "../../layers/Migrations.ts"
import { withDatabase } from "./databaseMode.ts"

export interface TestDatabaseShape {
  readonly kind: "postgres" | "pglite"
  /** The URL of this file's own migrated database; None on PGlite (each server then embeds its own). */
  readonly url: Option.Option<string>
}

export class TestDatabase extends Context.Service<TestDatabase, TestDatabaseShape>()("test/TestDatabase") {}

const adminClient = (url: string) =>
  Layer.fresh(PgClient.layer({ url: Redacted.make(url), maxConnections: 1, connectTimeout: "5 seconds" }))

const onAdmin = (adminUrl: string, statement: (sql: SqlClient.SqlClient) => Effect.Effect<unknown, unknown>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* statement(sql)
  }).pipe(Effect.provide(adminClient(adminUrl)), Effect.orDie)

/**
 * A database of this test file's own, so files run in parallel without seeing each other's rows: a clone of the
 * migrated template on PostgreSQL (dropped afterwards), or nothing to prepare on PGlite.
 */
export const TestDatabaseLive: Layer.Layer<TestDatabase> = Layer.effect(
  TestDatabase,
  Effect.gen(function* () {
    const mode = inject("testDatabase")
    if (mode.kind === "pglite") return { kind: "pglite" as const, url: Option.none() }
    const name = `codex_t_${randomBytes(6).toString("hex")}`
    yield* Effect.acquireRelease(
      onAdmin(mode.adminUrl, (sql) => sql`CREATE DATABASE ${sql(name)} TEMPLATE ${sql(mode.templateDatabase)}`),
      () => onAdmin(mode.adminUrl, (sql) => sql`DROP DATABASE IF EXISTS ${sql(name)} WITH (FORCE)`)
    )
    return { kind: "postgres" as const, url: Option.some(withDatabase(mode.adminUrl, name)) }
  })
)

/** A `SqlClient` on this file's migrated database (an embedded, migrated PGlite when no server is reachable). */
export const TestSqlLive: Layer.Layer<SqlClient.SqlClient | PgClient.PgClient | TestDatabase> = Layer.unwrap(
  Effect.gen(function* () {
    const database = yield* TestDatabase
    if (Option.isSome(database.url)) {
      return PgClient.layer({ url: Redacted.make(database.url.value), maxConnections: 4 })
    }
    const address = yield* startEmbeddedPostgres("memory://")
    const client = PgClient.layer({ ...address, username: "postgres", database: "postgres", maxConnections: 1 })
    return Layer.effectDiscard(runMigrations).pipe(Layer.provideMerge(client))
  })
).pipe(Layer.orDie, Layer.provideMerge(TestDatabaseLive))
