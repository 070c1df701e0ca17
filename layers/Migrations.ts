import { readdir, readFile } from "node:fs/promises"
import { join } from "node:path"
import { Effect, Layer } from "effect"
import { Migrator, SqlClient, type SqlError } from "effect/sql"
import { packageRoot } from "./PackageInfo.ts"

export const migrationsDirectory: string = join(packageRoot, "migrations")
export const migrationsTable = "codex_migrations"

const fileName = /^(\d{4})_([a-z0-9_]+)\.sql$/

/** A dollar-quote tag that cannot occur in the migration text (which may use `$$` itself). */
const quoteTagFor = (text: string): string => {
  let n = 0
  while (text.includes(`$m${n}$`)) n++
  return `$m${n}$`
}

/**
 * `@effect/sql-pg` only speaks the extended protocol, where one statement is one prepared statement. Wrapping the
 * whole file in a DO block lets one migration file hold many statements, and keeps it inside the migrator's
 * transaction.
 */
export const wrapMultiStatement = (text: string): string => {
  const inner = quoteTagFor(text)
  const outer = quoteTagFor(text + inner).replace("$m", "$o")
  return `DO ${outer} BEGIN EXECUTE ${inner}${text}${inner}; END ${outer}`
}

/** Loads `migrations/NNNN_name.sql` in id order: plain SQL files anyone can read and apply by hand. */
export const sqlFileLoader = (directory: string): Migrator.Loader =>
  Effect.tryPromise({
    try: async () => {
      const entries = (await readdir(directory)).filter((name) => name.endsWith(".sql")).sort()
      return Promise.all(
        entries.map(async (name): Promise<Migrator.ResolvedMigration> => {
          const match = fileName.exec(name)
          if (match === null || match[1] === undefined || match[2] === undefined) {
            throw new Error(`migration file name must look like 0001_name.sql: ${name}`)
          }
          const text = await readFile(join(directory, name), "utf8")
          const load = Effect.gen(function* () {
            const sql = yield* SqlClient.SqlClient
            yield* sql.unsafe(wrapMultiStatement(text))
          })
          return [Number(match[1]), match[2], Effect.succeed(load)]
        })
      )
    },
    catch: (cause) =>
      new Migrator.MigrationError({ kind: "ImportError", message: `cannot load migrations from ${directory}`, cause })
  })

/**
 * Applies pending migrations. The migrator locks its table for the whole run, so replicas starting together
 * serialise here and each migration is applied exactly once.
 */
export const runMigrations: Effect.Effect<
  ReadonlyArray<readonly [id: number, name: string]>,
  Migrator.MigrationError | SqlError.SqlError,
  SqlClient.SqlClient
> = Migrator.make({})({ loader: sqlFileLoader(migrationsDirectory), table: migrationsTable }).pipe(
  Effect.tap((applied) =>
    applied.length === 0
      ? Effect.logInfo("database schema is up to date")
      : Effect.logInfo("applied migrations").pipe(
          Effect.annotateLogs({ migrations: applied.map(([id, name]) => `${id}_${name}`).join(",") })
        )
  ),
  Effect.withSpan("migrations.run")
)

/** Runs the migrations while the app starts; startup fails if they fail. */
export const MigrationsLive: Layer.Layer<never, Migrator.MigrationError | SqlError.SqlError, SqlClient.SqlClient> =
  Layer.effectDiscard(runMigrations)
