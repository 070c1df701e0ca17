import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Option } from "effect"
import type { SqlClient, SqlError } from "effect/sql"
import { AppConfig } from "../services/AppConfig.ts"
import type { DataDirectoryInUse, DataDirectoryLockError } from "./DataDirectoryLock.ts"
import type { EmbeddedPostgresError } from "./EmbeddedPostgres.ts"

const applicationName = "codex-api"

/**
 * The database: `@effect/sql-pg` against `DATABASE_URL`, or, when it is unset, against an embedded PGlite served on a
 * loopback socket (pool of one, see EmbeddedPostgres). The rest of the app depends only on `SqlClient`, so it cannot
 * tell the two apart.
 *
 * PGlite (and its socket server) is imported only when it is used: a process on `DATABASE_URL` (the worker, the
 * container) does not load the embedded database's code at start-up.
 */
export const DatabaseLive: Layer.Layer<
  PgClient.PgClient | SqlClient.SqlClient,
  SqlError.SqlError | EmbeddedPostgresError | DataDirectoryInUse | DataDirectoryLockError,
  AppConfig
> = Layer.unwrap(
  Effect.gen(function* () {
    const config = yield* AppConfig
    if (Option.isSome(config.databaseUrl)) {
      return PgClient.layer({
        url: config.databaseUrl.value,
        maxConnections: config.databasePoolMax,
        applicationName
      })
    }
    const { startEmbeddedPostgres } = yield* Effect.promise(() => import("./EmbeddedPostgres.ts"))
    const address = yield* startEmbeddedPostgres(config.pgliteDir)
    yield* Effect.logInfo("using the embedded PGlite database").pipe(
      Effect.annotateLogs({ pgliteDir: config.pgliteDir })
    )
    return PgClient.layer({
      host: address.host,
      port: address.port,
      username: "postgres",
      database: "postgres",
      maxConnections: 1,
      applicationName
    })
  })
)
