import { Clock, Duration, Effect, Queue, type Scope } from "effect"
import type { SqlClient } from "effect/sql"
import type { ApiKeyId } from "../src/domain/Ids.ts"

/** How often a key's `last_used_at` is written at most: per process here, across replicas by the statement itself. */
export const lastUsedInterval = Duration.minutes(1)

/** How many keys a process remembers writing for (the least recently written are forgotten first). */
const rememberedKeys = 10_000

/** Writes waiting for the writer; when it falls behind (database slow or down), further ones are dropped. */
const pendingWrites = 1_000

export interface ApiKeyUse {
  /** The key authenticated a request: its `last_used_at` is written soon unless this process wrote it recently. */
  readonly used: (id: ApiKeyId) => Effect.Effect<void>
}

/**
 * Records key use without a write per request: at most one write per key per minute per process, by one background
 * fiber, in the order the keys were used. A failed write is logged and forgotten: `lastUsedAt` is a hint, never worth
 * failing (or slowing) a request for.
 */
export const makeApiKeyUse = (sql: SqlClient.SqlClient): Effect.Effect<ApiKeyUse, never, Scope.Scope> =>
  Effect.gen(function* () {
    const intervalMs = Duration.toMillis(lastUsedInterval)
    // Key id → when this process last queued a write for it (ms), least recent first.
    const written = new Map<ApiKeyId, number>()
    const queue = yield* Queue.dropping<ApiKeyId>(pendingWrites)
    const write = (id: ApiKeyId) =>
      sql`
        UPDATE api_keys SET last_used_at = now()
        WHERE id = ${id} AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`.pipe(
        Effect.asVoid,
        Effect.catchCause((cause) =>
          Effect.logDebug("api key: last_used_at not written", cause).pipe(Effect.annotateLogs({ apiKeyId: id }))
        )
      )
    yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(queue), write)))
    return {
      used: (id) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const last = written.get(id)
          if (last !== undefined && now - last < intervalMs) return Effect.void
          written.delete(id)
          written.set(id, now)
          if (written.size > rememberedKeys) {
            const oldest = written.keys().next()
            if (oldest.done !== true) written.delete(oldest.value)
          }
          return Effect.asVoid(Queue.offer(queue, id))
        })
    }
  })
