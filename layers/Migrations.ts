import { readdir, readFile } from "node:fs/promises"
import { join } from "node:path"
import { Effect, Layer } from "effect"
import { Migrator, SqlClient, type SqlError } from "effect/sql"
import { packageRoot } from "../src/domain/PackageInfo.ts"

export const migrationsDirectory: string = join(packageRoot, "migrations")
export const migrationsTable = "codex_migrations"

const fileName = /^(\d{4})_([a-z0-9_]+)\.sql$/

/** A dollar-quote tag (`$m0$`, `$m1$`, ...) that does not occur in `text` (which may use `$$` and tags of its own). */
const freshTag = (prefix: string, text: string): string => {
  let n = 0
  while (text.includes(`$${prefix}${n}$`)) n++
  return `$${prefix}${n}$`
}

/**
 * `@effect/sql-pg` only speaks the extended protocol, where one statement is one prepared statement. Wrapping the
 * whole file in a DO block lets one migration file hold many statements, and keeps it inside the migrator's
 * transaction. Neither quote tag occurs in the file, and the line breaks around the file keep a tag from forming
 * across its edges (a file ending in `$m0`, say, followed by the closing `$m0$`).
 */
export const wrapMultiStatement = (text: string): string => {
  const inner = freshTag("m", text)
  const outer = freshTag("o", text)
  return `DO ${outer} BEGIN EXECUTE ${inner}\n${text}\n${inner}; END ${outer}`
}

const loadError = (directory: string, message: string, cause?: unknown): Migrator.MigrationError =>
  new Migrator.MigrationError({ kind: "ImportError", message: `migrations in ${directory}: ${message}`, cause })

/**
 * Checks the `.sql` file names of a migrations directory: each must be `NNNN_name.sql` with a unique id from 0001
 * (the migrator treats 0 as "nothing applied yet", so a 0000 file would never run). Returns them in id order.
 */
const parseFileNames = (
  directory: string,
  names: ReadonlyArray<string>
): Effect.Effect<ReadonlyArray<readonly [id: number, name: string, file: string]>, Migrator.MigrationError> => {
  const parsed: Array<readonly [id: number, name: string, file: string]> = []
  const byId = new Map<number, string>()
  for (const file of names.filter((name) => name.endsWith(".sql")).sort()) {
    const match = fileName.exec(file)
    if (match === null || match[1] === undefined || match[2] === undefined) {
      return Effect.fail(
        loadError(directory, `file name must look like 0001_name.sql (lowercase letters, digits, _): ${file}`)
      )
    }
    const id = Number(match[1])
    if (id === 0) return Effect.fail(loadError(directory, `migration ids start at 0001: ${file}`))
    const clash = byId.get(id)
    if (clash !== undefined)
      return Effect.fail(loadError(directory, `two files share id ${match[1]}: ${clash}, ${file}`))
    byId.set(id, file)
    parsed.push([id, match[2], file])
  }
  return Effect.succeed(parsed)
}

/** Loads `migrations/NNNN_name.sql` in id order: plain SQL files anyone can read and apply by hand. */
export const sqlFileLoader = (directory: string): Migrator.Loader =>
  Effect.gen(function* () {
    const names = yield* Effect.tryPromise({
      try: () => readdir(directory),
      catch: (cause) => loadError(directory, "cannot list the directory", cause)
    })
    const files = yield* parseFileNames(directory, names)
    return yield* Effect.forEach(files, ([id, name, file]) =>
      Effect.tryPromise({
        try: () => readFile(join(directory, file), "utf8"),
        catch: (cause) => loadError(directory, `cannot read ${file}`, cause)
      }).pipe(
        Effect.map((text): Migrator.ResolvedMigration => {
          const load = Effect.gen(function* () {
            const sql = yield* SqlClient.SqlClient
            yield* sql.unsafe(wrapMultiStatement(text))
          })
          return [id, name, Effect.succeed(load)]
        })
      )
    )
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
