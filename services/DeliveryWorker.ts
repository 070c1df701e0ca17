import { Context, type Effect } from "effect"

/**
 * The webhook delivery worker of this process: a scoped service that claims due deliveries (`FOR UPDATE SKIP LOCKED`
 * with a lease), sends them signed, records every attempt and schedules retries. It runs while its layer is alive;
 * closing the layer stops claiming, lets in-flight sends finish (bounded) and releases the leases it still holds.
 */
export interface DeliveryWorkerShape {
  /** Identifies this worker's leases (`deliveries.locked_by`). */
  readonly workerId: string
  /** Looks for due deliveries now, as a notification from a publishing transaction does. */
  readonly wake: Effect.Effect<void>
  /** Deliveries being sent right now by this worker. */
  readonly inFlight: Effect.Effect<number>
  /**
   * Whether the worker is woken by LISTEN/NOTIFY, i.e. by other processes' writes too (false on the embedded database:
   * woken by this process's writes through DeliveryWakeups, otherwise by polling).
   */
  readonly listening: boolean
}

export class DeliveryWorker extends Context.Service<DeliveryWorker, DeliveryWorkerShape>()("codex/DeliveryWorker") {}
