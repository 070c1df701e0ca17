import { Clock, Duration, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { DatabaseHealth } from "../services/DatabaseHealth.ts"
import { statementWithin } from "./StatementDeadline.ts"

/** A probe slower than this counts as down: readiness must answer quickly even when the database hangs. */
const probeTimeout = Duration.seconds(2)

/**
 * How long a probe's answer is reused. The probes are unauthenticated and never rate limited (an orchestrator must
 * always reach them), so a flood of them must not turn into a flood of queries competing with tenants for the pool.
 */
export const probeMaxAge = Duration.seconds(1)

/**
 * `SELECT 1` at most about once a second, however many probes ask: callers within `probeMaxAge` of the last answer
 * get it again, and callers arriving while a probe runs wait for that one (never two in flight).
 */
export const DatabaseHealthLive: Layer.Layer<DatabaseHealth, never, SqlClient.SqlClient> = Layer.effect(
  DatabaseHealth,
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const scope = yield* Effect.scope
    const probe = Effect.gen(function* () {
      const start = yield* Clock.currentTimeMillis
      const up = yield* sql`SELECT 1`.pipe(
        statementWithin(scope, probeTimeout),
        Effect.as(true),
        Effect.catchCause(() => Effect.succeed(false))
      )
      const latencyMs = (yield* Clock.currentTimeMillis) - start
      return { status: up ? ("up" as const) : ("down" as const), latencyMs }
    }).pipe(Effect.withSpan("DatabaseHealth.check"))
    const check = yield* Effect.cachedWithTTL(probe, probeMaxAge)
    return DatabaseHealth.of({ check })
  })
)
