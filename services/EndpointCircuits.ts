import { Context, type Duration, type Effect, Schema } from "effect"

/** What the API shows of an endpoint's circuit. `unknown`: the shared store (Redis) could not be read. */
export type CircuitState = "closed" | "open" | "half_open" | "unknown"

export interface EndpointHealth {
  readonly circuit: CircuitState
  /** When an open circuit lets the next attempt through as a probe; null unless `open`. */
  readonly openUntil: Date | null
}

/**
 * What one attempt says about the receiver's health. `Failure` may carry the receiver's `Retry-After`, which can only
 * lengthen the opening it causes (capped at `BREAKER_OPEN_MAX`). `Ignored`: nothing was learnt (e.g. nothing was sent).
 */
export type CircuitVerdict =
  | { readonly _tag: "Success" }
  | { readonly _tag: "Failure"; readonly retryAfter: Duration.Duration | undefined }
  | { readonly _tag: "Ignored" }

const success: CircuitVerdict = { _tag: "Success" }
const ignored: CircuitVerdict = { _tag: "Ignored" }

export const CircuitVerdict = {
  success,
  ignored,
  failure: (retryAfter?: Duration.Duration): CircuitVerdict => ({ _tag: "Failure", retryAfter })
} as const

/**
 * The endpoint's circuit refused the attempt without running it. `open`: wait `retryAfter` (the rest of the open
 * period). `half_open`: another caller's probe is running; try again shortly (`retryAfter` is zero).
 */
export class CircuitRejected extends Schema.TaggedError<CircuitRejected>()("CircuitRejected", {
  endpointId: Schema.String,
  circuit: Schema.Literals(["open", "half_open"]),
  retryAfter: Schema.DurationFromMillis
}) {}

/**
 * One circuit breaker per webhook endpoint (closed → open → half-open → closed). The delivery worker runs every attempt
 * through `guard`; the API reads `health`. Whether circuits are per process (memory) or shared by every replica
 * (Redis) is the layer's business.
 */
export interface EndpointCircuitsShape {
  /**
   * Runs one attempt through the endpoint's circuit, or refuses it with `CircuitRejected` while the circuit is open
   * (or half-open with a probe running). `verdict` classifies the attempt's result for the breaker.
   */
  readonly guard: <A, E, R>(
    endpointId: string,
    attempt: Effect.Effect<A, E, R>,
    verdict: (result: A) => CircuitVerdict
  ) => Effect.Effect<A, E | CircuitRejected, R>
  readonly health: (endpointId: string) => Effect.Effect<EndpointHealth>
}

export class EndpointCircuits extends Context.Service<EndpointCircuits, EndpointCircuitsShape>()(
  "codex/EndpointCircuits"
) {}
