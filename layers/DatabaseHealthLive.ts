import { Clock, Duration, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { DatabaseHealth } from "../services/DatabaseHealth.ts"

/** A probe slower than this counts as down: readiness must answer quickly even when the database hangs. */
const probeTimeout = Duration.seconds(2)

export const DatabaseHealthLive: Layer.Layer<DatabaseHealth, never, SqlClient.SqlClient> = Layer.effect(
  DatabaseHealth,
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const check = Effect.gen(function* () {
      const start = yield* Clock.currentTimeMillis
      const up = yield* sql`SELECT 1`.pipe(
        Effect.timeout(probeTimeout),
        Effect.as(true),
        Effect.catchCause(() => Effect.succeed(false))
      )
      const latencyMs = (yield* Clock.currentTimeMillis) - start
      return { status: up ? ("up" as const) : ("down" as const), latencyMs }
    }).pipe(Effect.withSpan("DatabaseHealth.check"))
    return DatabaseHealth.of({ check })
  })
)
