import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { DeliveryWakeups } from "../services/DeliveryWakeups.ts"

/**
 * The wake-ups in memory. `queued` defers through `afterCommit` of the SqlClient the writers use, so a write nested in
 * an outer transaction (the Idempotency-Key middleware's, around a retry) wakes the worker when that one commits.
 */
export const DeliveryWakeupsLive: Layer.Layer<DeliveryWakeups, never, SqlClient.SqlClient> = Layer.effect(
  DeliveryWakeups,
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const subscribers = new Set<Effect.Effect<void>>()
    const wakeAll = Effect.suspend(() => Effect.forEach(subscribers, (wake) => wake, { discard: true }))
    return DeliveryWakeups.of({
      queued: sql.afterCommit(wakeAll),
      subscribe: (wake) =>
        Effect.acquireRelease(
          Effect.sync(() => subscribers.add(wake)),
          () => Effect.sync(() => subscribers.delete(wake))
        ).pipe(Effect.asVoid)
    })
  })
)
