import { assert, describe, it } from "@effect/vitest"
import { Duration, Option } from "effect"
import type { AttemptOutcome } from "../src/domain/Delivery.ts"
import { type AttemptResult, decide, retried, storedDecision } from "../src/domain/DeliveryDecision.ts"

/** The retry decision (src/domain/DeliveryDecision.ts): a pure function of the attempt, the backoff and its cap. */

const result = (outcome: AttemptOutcome, retryAfter?: Duration.Duration): AttemptResult => ({
  outcome,
  statusCode: null,
  error: null,
  excerpt: null,
  retryAfter: Option.fromUndefinedOr(retryAfter)
})

const max = Duration.seconds(60)
const backoff = Option.some(Duration.seconds(4))

describe("decide", () => {
  it("delivered and gone end the delivery whatever the backoff; neither needs one", () => {
    assert.deepStrictEqual(decide(result("succeeded"), backoff, max), { _tag: "Succeeded" })
    assert.deepStrictEqual(decide(result("gone"), backoff, max), { _tag: "Gone" })
    assert.isFalse(retried(result("succeeded")))
    assert.isFalse(retried(result("gone")))
  })

  it("every other outcome retries after the backoff, or fails once the attempts are used up", () => {
    for (const outcome of ["failed", "timeout", "network_error", "blocked"] as const) {
      assert.isTrue(retried(result(outcome)), outcome)
      assert.deepStrictEqual(decide(result(outcome), backoff, max), { _tag: "Retry", delay: Duration.seconds(4) })
      assert.deepStrictEqual(decide(result(outcome), Option.none(), max), { _tag: "Failed" })
    }
  })

  it("Retry-After lengthens the wait up to the cap; the backoff is the floor", () => {
    const asked = (after: Duration.Duration) => decide(result("failed", after), backoff, max)
    assert.deepStrictEqual(asked(Duration.seconds(30)), { _tag: "Retry", delay: Duration.seconds(30) })
    assert.deepStrictEqual(asked(Duration.hours(1)), { _tag: "Retry", delay: max })
    assert.deepStrictEqual(asked(Duration.seconds(1)), { _tag: "Retry", delay: Duration.seconds(4) })
  })

  it("is stored as the delivery's status and the seconds to its next attempt", () => {
    assert.deepStrictEqual(storedDecision({ _tag: "Succeeded" }), { status: "succeeded", delaySeconds: null })
    assert.deepStrictEqual(storedDecision({ _tag: "Gone" }), { status: "failed", delaySeconds: null })
    assert.deepStrictEqual(storedDecision({ _tag: "Failed" }), { status: "failed", delaySeconds: null })
    assert.deepStrictEqual(storedDecision({ _tag: "Retry", delay: Duration.millis(1500) }), {
      status: "pending",
      delaySeconds: 1.5
    })
  })
})
