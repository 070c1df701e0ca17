import { Duration, Option } from "effect"
import type { AttemptOutcome } from "./Delivery.ts"

/** What one attempt came to: how it ended, what the receiver answered, and how long it asked us to wait. */
export interface AttemptResult {
  readonly outcome: AttemptOutcome
  readonly statusCode: number | null
  readonly error: string | null
  readonly excerpt: string | null
  readonly retryAfter: Option.Option<Duration.Duration>
}

/**
 * Where a delivery goes after an attempt: delivered; failed for good (attempts used up); retried after `delay`; or
 * `gone` (410: the delivery fails, and its endpoint is disabled with everything still pending for it cancelled).
 */
export type Decision =
  | { readonly _tag: "Succeeded" }
  | { readonly _tag: "Failed" }
  | { readonly _tag: "Gone" }
  | { readonly _tag: "Retry"; readonly delay: Duration.Duration }

const succeeded: Decision = { _tag: "Succeeded" }
const failed: Decision = { _tag: "Failed" }
const gone: Decision = { _tag: "Gone" }

/** Whether the attempt's delivery may be tried again (neither delivered nor refused for good): it needs a backoff. */
export const retried = (result: AttemptResult): boolean => result.outcome !== "succeeded" && result.outcome !== "gone"

/**
 * The decision after an attempt. `backoff` is the retry schedule's delay after this attempt (None once the attempts
 * are used up). A receiver's `Retry-After` (429, 503...) is honoured up to `backoffMax`; the backoff is the floor, so
 * a receiver cannot make us retry sooner than the schedule.
 */
export const decide = (
  result: AttemptResult,
  backoff: Option.Option<Duration.Duration>,
  backoffMax: Duration.Duration
): Decision => {
  if (result.outcome === "succeeded") return succeeded
  if (result.outcome === "gone") return gone
  if (Option.isNone(backoff)) return failed
  const delay = Option.match(result.retryAfter, {
    onNone: () => backoff.value,
    onSome: (asked) => Duration.max(backoff.value, Duration.min(asked, backoffMax))
  })
  return { _tag: "Retry", delay }
}

/** A decision as the delivery row stores it: its status, and for a retry the seconds until the next attempt. */
export const storedDecision = (
  decision: Decision
): { readonly status: "succeeded" | "failed" | "pending"; readonly delaySeconds: number | null } => {
  switch (decision._tag) {
    case "Succeeded":
      return { status: "succeeded", delaySeconds: null }
    case "Failed":
    case "Gone":
      return { status: "failed", delaySeconds: null }
    case "Retry":
      return { status: "pending", delaySeconds: Duration.toMillis(decision.delay) / 1000 }
  }
}
