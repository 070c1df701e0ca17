import { Context, type Effect } from "effect"

/**
 * Whether this process should receive new traffic. It turns "draining" once shutdown starts, so `/readyz` answers
 * 503 (load balancers stop routing here) and responses carry `Connection: close` (clients stop reusing sockets).
 */
export interface ReadinessShape {
  /** Synchronous on purpose: read on every response, so it must cost nothing. */
  readonly isDraining: () => boolean
  readonly beginDraining: Effect.Effect<void>
}

export class Readiness extends Context.Service<Readiness, ReadinessShape>()("codex/Readiness") {}
