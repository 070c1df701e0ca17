import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import type { TestProject } from "vitest/node"
import { runMigrations } from "../../layers/Migrations.ts"
import { type TestDatabaseMode, withDatabase } from "./databaseMode.ts"

const localServer = "postgres://postgres@127.0.0.1:5432/postgres"

const client = (url: string) =>
  PgClient.layer({ url: Redacted.make(url), maxConnections: 1, connectTimeout: "2 seconds" })

const answers = (url: string): Promise<boolean> =>
  Effect.runPromise(
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* sql`SELECT 1`
      return true
    }).pipe(
      Effect.provide(client(url)),
      Effect.catchCause(() => Effect.succeed(false))
    )
  )

const adminQuery = (url: string, statement: (sql: SqlClient.SqlClient) => Effect.Effect<unknown, unknown>) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* statement(sql)
    }).pipe(Effect.provide(client(url)), Effect.orDie)
  )

/**
 * Picks the database for the whole run: `TEST_DATABASE_URL`, else a PostgreSQL answering on 127.0.0.1:5432, else
 * embedded PGlite. With a server, one migrated template database is made here and each test file clones it.
 */
export default async function setup(project: TestProject) {
  const configured = process.env.TEST_DATABASE_URL
  // TEST_DATABASE=pglite runs the suite as on a machine with nothing but Node.
  const forcePglite = process.env.TEST_DATABASE === "pglite"
  const adminUrl = forcePglite ? undefined : (configured ?? ((await answers(localServer)) ? localServer : undefined))
  if (adminUrl === undefined || !(await answers(adminUrl))) {
    if (!forcePglite && configured !== undefined) {
      throw new Error(`TEST_DATABASE_URL does not answer: ${new URL(configured).host}`)
    }
    process.stdout.write(
      forcePglite
        ? "[tests] TEST_DATABASE=pglite: using embedded PGlite (multi-process tests skip)\n"
        : "[tests] no PostgreSQL reachable: using embedded PGlite (multi-process tests skip)\n"
    )
    project.provide("testDatabase", { kind: "pglite" } satisfies TestDatabaseMode)
    return
  }
  const templateDatabase = `codex_tpl_${process.pid}`
  await adminQuery(adminUrl, (sql) => sql`DROP DATABASE IF EXISTS ${sql(templateDatabase)}`)
  await adminQuery(adminUrl, (sql) => sql`CREATE DATABASE ${sql(templateDatabase)}`)
  await Effect.runPromise(
    runMigrations.pipe(
      Effect.provide(Layer.fresh(client(withDatabase(adminUrl, templateDatabase)))),
      Effect.provide(Layer.empty),
      Effect.orDie
    )
  )
  process.stdout.write(`[tests] using PostgreSQL at ${new URL(adminUrl).host} (template ${templateDatabase})\n`)
  project.provide("testDatabase", { kind: "postgres", adminUrl, templateDatabase } satisfies TestDatabaseMode)
  return async () => {
    await adminQuery(adminUrl, (sql) => sql`DROP DATABASE IF EXISTS ${sql(templateDatabase)} WITH (FORCE)`)
  }
}
