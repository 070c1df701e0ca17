import { Effect, type Scope } from "effect"
import { testEncryptionKeysEnv } from "./appConfig.ts"
import { type Service, startService, stopService } from "./processes.ts"

/**
 * The app (`src/main.ts`) as a process of its own, as production runs it: for what only a real process shows (two
 * processes sharing a database or Redis, environment variables, startup logs). In-process tests use `testServer`.
 *
 * @example
 * const app = yield* appProcess(shared.url, { RATE_LIMIT_MAX: "3" })
 * const reply = yield* requestAt(app.ready, "/livez")
 */

/** The app process; `ready` is its base URL. */
export type AppProcess = Service<string>

/** For `startService`: the base URL in the app's `listening` log line. */
export const listeningUrl = (entry: Record<string, unknown>): string | undefined =>
  entry.message === "listening" && typeof entry.port === "number" ? `http://127.0.0.1:${entry.port}` : undefined

/**
 * Starts the app on `databaseUrl` ("" with `PGLITE_DIR` for an embedded one) and resolves once it listens: a
 * development process on an ephemeral port, JSON logs, no access log, no delivery worker, the test server's
 * encryption key; `env` overrides any of it.
 */
export const startAppProcess = (databaseUrl: string, env: Record<string, string> = {}): Promise<AppProcess> =>
  startService(
    "src/main.ts",
    {
      ...process.env,
      APP_ENV: "development",
      HOST: "127.0.0.1",
      PORT: "0",
      LOG_FORMAT: "json",
      LOG_LEVEL: "info",
      ACCESS_LOG: "false",
      DATABASE_URL: databaseUrl,
      DELIVERY_WORKER: "false",
      // The in-process test server's key: processes and the test server share the database and its sealed values.
      ENCRYPTION_KEYS: testEncryptionKeysEnv,
      ...env
    },
    listeningUrl
  )

/** SIGTERM the app process and wait for it, as an Effect. */
export const stopAppProcess = (app: AppProcess): Effect.Effect<void> => Effect.promise(() => stopService(app))

/** `startAppProcess` for the life of the scope: stopped (SIGTERM, then waited for) when it closes. */
export const appProcess = (
  databaseUrl: string,
  env: Record<string, string> = {}
): Effect.Effect<AppProcess, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => startAppProcess(databaseUrl, env)),
    stopAppProcess
  )
