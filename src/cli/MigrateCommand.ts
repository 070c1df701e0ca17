import { spawn } from "node:child_process"
import { extname } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import { MigrationFailed } from "./Failure.ts"

/**
 * `codex migrate`: runs the project's migration entry point (`npm run migrate`: src/migrate.ts, or dist/src/migrate.js
 * next to a compiled CLI) as a child with this environment, its output passed through. It migrates DATABASE_URL (the
 * embedded database at PGLITE_DIR when unset) with the rest of the server's configuration, as the server would.
 */
const migrateEntry = fileURLToPath(new URL(`../migrate${extname(import.meta.url)}`, import.meta.url))

const runMigrations = (databaseUrl: Option.Option<string>) =>
  Effect.callback<void, MigrationFailed>((resume) => {
    const env = Option.match(databaseUrl, {
      onNone: () => process.env,
      onSome: (url) => ({ ...process.env, DATABASE_URL: url })
    })
    const child = spawn(process.execPath, [migrateEntry], { env, stdio: "inherit" })
    child.once("error", () => resume(Effect.fail(new MigrationFailed({ code: null }))))
    child.once("exit", (code) => resume(code === 0 ? Effect.void : Effect.fail(new MigrationFailed({ code }))))
    return Effect.sync(() => child.kill("SIGTERM"))
  })

export const MigrateCommand = Command.make(
  "migrate",
  {
    databaseUrl: Flag.String("database-url").pipe(
      Flag.withDescription("The PostgreSQL URL to migrate (default: DATABASE_URL)"),
      Flag.optional
    )
  },
  ({ databaseUrl }) => runMigrations(databaseUrl)
).pipe(
  Command.withDescription(
    "Apply the pending migrations to DATABASE_URL and exit (npm run migrate); needs the server's configuration"
  )
)
