import { Duration, Effect, Layer, Option, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { type OutboxState, OutboxStats } from "../services/OutboxStats.ts"
import { pendingEndpoints } from "./DeliveryClaim.ts"
import { decodeRows } from "./SqlRows.ts"
import { statementWithin } from "./StatementDeadline.ts"

/**
 * The pending count stops here, and the gauge then reads exactly this: counting walks the index entry by entry
 * (~25 ms per 100,000 on PostgreSQL 15), and past this many a backlog is an incident whatever the exact number. The
 * oldest age is never capped: it is one index probe.
 */
export const pendingCountCap = 100_000

/** A read slower than this gives up: the scrape is answered at once, without the two gauges. */
export const readTimeout = Duration.seconds(2)

/** How long one read serves every scrape (several Prometheus servers, a flood): the gauges may be this much old. */
export const readMaxAge = Duration.seconds(5)

/**
 * One statement: the first `cap` entries of `deliveries_due_idx` (`(next_attempt_at) WHERE status = 'pending'`;
 * index-only once the table is vacuumed) in index order, counted (the ORDER BY keeps the planner on the index whatever
 * the table's statistics say); and the oldest due delivery's age: each endpoint's oldest pending one (a loose scan of
 * `deliveries_endpoint_due_idx`, one probe per endpoint with pending deliveries), leaving out paused endpoints (an open
 * circuit: their deliveries wait on the receiver, not on the workers) and disabled ones (disabled for failing: their
 * deliveries wait to be enabled again), 0 when none is due. `now()` is the database's
 * clock, so every replica reports the same values.
 */
export const outboxStateStatement = (sql: SqlClient.SqlClient, cap: number = pendingCountCap) =>
  sql`
    WITH RECURSIVE pending_endpoints AS (${pendingEndpoints(sql)})
    SELECT
      (SELECT count(*) FROM (
         SELECT 1 FROM deliveries WHERE status = 'pending' ORDER BY next_attempt_at LIMIT ${sql.literal(String(Math.trunc(cap)))}
       ) AS capped)::int AS pending,
      GREATEST(0, extract(epoch FROM now() - (
         SELECT min(p.oldest) FROM pending_endpoints p JOIN endpoints ep ON ep.id = p.endpoint_id
         WHERE (ep.paused_until IS NULL OR ep.paused_until <= now()) AND ep.enabled
      )))::float8 AS oldest_age_seconds`

const outboxRows = decodeRows(Schema.Struct({ pending: Schema.Int, oldest_age_seconds: Schema.Number }))

/** The outbox state, read once (no timeout, no cache). */
export const readOutboxState = (sql: SqlClient.SqlClient, cap: number = pendingCountCap) =>
  Effect.map(
    outboxRows(outboxStateStatement(sql, cap)),
    ([row]): OutboxState => ({ pending: row?.pending ?? 0, oldestAgeSeconds: row?.oldest_age_seconds ?? 0 })
  )

/**
 * Read at scrape time rather than by a background loop: the database is asked only when someone looks, and the
 * answer is as fresh as the scrape (within `readMaxAge`). Scrapes arriving within `readMaxAge` of an answer get it
 * again; those arriving while a read runs wait for that one. A plain query (no transaction), bounded by
 * `readTimeout` including the wait for a pooled connection; a failure is remembered for `readMaxAge` too, so a sick
 * database is not asked again by every scrape.
 */
export const OutboxStatsLive: Layer.Layer<OutboxStats, never, SqlClient.SqlClient> = Layer.effect(
  OutboxStats,
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const scope = yield* Effect.scope
    const read = readOutboxState(sql).pipe(
      statementWithin(scope, readTimeout),
      Effect.map(Option.some),
      Effect.catchCause((cause) =>
        Effect.logWarning("metrics: could not read the outbox; its gauges are left out of this scrape", cause).pipe(
          Effect.as(Option.none<OutboxState>())
        )
      ),
      Effect.withSpan("OutboxStats.read")
    )
    return OutboxStats.of({ read: yield* Effect.cachedWithTTL(read, readMaxAge) })
  })
)
