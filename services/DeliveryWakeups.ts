import { Context, type Effect, type Scope } from "effect"

/**
 * Wakes this process's delivery worker when this process queues deliveries. NOTIFY reaches only workers that LISTEN
 * (PostgreSQL, a pool of two or more); on the embedded database (a pool of one, API and worker in one process) this is
 * the only wake-up, and without it a new delivery would wait for the next poll. On PostgreSQL the worker lets these pass
 * while it LISTENs: the NOTIFY arrives a moment later and names the endpoints, so it claims only when one has room.
 */
export interface DeliveryWakeupsShape {
  /**
   * The caller queued deliveries (or made some due now): the worker is woken once the outermost transaction commits,
   * at once outside a transaction, never when it rolls back. A wake-up before the commit would find nothing to claim.
   */
  readonly queued: Effect.Effect<void>
  /** Runs `wake` (quick, never blocking) on every wake-up, for as long as the scope is open. */
  readonly subscribe: (wake: Effect.Effect<void>) => Effect.Effect<void, never, Scope.Scope>
}

export class DeliveryWakeups extends Context.Service<DeliveryWakeups, DeliveryWakeupsShape>()(
  "codex/DeliveryWakeups"
) {}
