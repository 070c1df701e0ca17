import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Option } from "effect"
import { Webhook } from "standardwebhooks"
import { delayAfterAttempt, delayBound, parseRetryAfter, retrySchedule } from "../src/domain/RetryPolicy.ts"
import { newWebhookSecret } from "../src/domain/WebhookSecret.ts"
import { signV1, webhookHeaders } from "../src/domain/WebhookSignature.ts"

/** Our signer against the official `standardwebhooks` library (the one receivers use). */
describe("Standard Webhooks signing", () => {
  const body = JSON.stringify({ type: "order.created", timestamp: "2026-01-01T00:00:00.000Z", data: { n: 1, s: "é✓" } })

  it.effect("the official library verifies our headers, and signs exactly what we sign", () =>
    Effect.gen(function* () {
      const secret = yield* newWebhookSecret
      const now = Math.floor(Date.now() / 1000)
      const headers = webhookHeaders([secret], "evt_01J00000000000000000000000", now, body)
      const verified = new Webhook(secret).verify(body, { ...headers })
      assert.deepStrictEqual(verified, JSON.parse(body))
      assert.strictEqual(
        new Webhook(secret).sign("evt_01J00000000000000000000000", new Date(now * 1000), body),
        signV1(secret, "evt_01J00000000000000000000000", now, body)
      )
      assert.match(headers["webhook-signature"], /^v1,[A-Za-z0-9+/]+=*$/)
      assert.strictEqual(headers["webhook-timestamp"], String(now))
    })
  )

  it.effect(
    "during a rotation both secrets verify; an unrelated secret, a tampered body or an old timestamp do not",
    () =>
      Effect.gen(function* () {
        const current = yield* newWebhookSecret
        const previous = yield* newWebhookSecret
        const other = yield* newWebhookSecret
        const now = Math.floor(Date.now() / 1000)
        const headers = webhookHeaders([current, previous], "evt_X", now, body)
        assert.strictEqual(headers["webhook-signature"].split(" ").length, 2)
        new Webhook(current).verify(body, { ...headers })
        new Webhook(previous).verify(body, { ...headers })
        assert.throws(() => new Webhook(other).verify(body, { ...headers }))
        assert.throws(() => new Webhook(current).verify(`${body} `, { ...headers }))
        const stale = webhookHeaders([current], "evt_X", now - 600, body)
        assert.throws(() => new Webhook(current).verify(body, { ...stale }))
      })
  )
})

describe("retry policy", () => {
  const policy = { maxAttempts: 5, base: Duration.seconds(10), max: Duration.seconds(50) }

  it.effect("full jitter: the delay before attempt n is within [0, min(max, base * 2^(n-2))]; 5 attempts in all", () =>
    Effect.gen(function* () {
      const schedule = retrySchedule(policy)
      for (let run = 0; run < 200; run++) {
        for (let made = 1; made <= 4; made++) {
          const delay = yield* delayAfterAttempt(schedule, made)
          assert.isTrue(Option.isSome(delay))
          const ms = Duration.toMillis(Option.getOrThrow(delay))
          assert.isAtLeast(ms, 0)
          assert.isAtMost(ms, Duration.toMillis(delayBound(policy, made + 1)))
        }
        assert.isTrue(Option.isNone(yield* delayAfterAttempt(schedule, 5)), "no 6th attempt")
      }
      assert.deepStrictEqual(
        [2, 3, 4, 5].map((n) => Duration.toSeconds(delayBound(policy, n))),
        [10, 20, 40, 50]
      )
    })
  )

  it.effect("the delays are spread over the window, not clustered", () =>
    Effect.gen(function* () {
      const schedule = retrySchedule(policy)
      const samples: Array<number> = []
      for (let i = 0; i < 400; i++)
        samples.push(Duration.toMillis(Option.getOrThrow(yield* delayAfterAttempt(schedule, 3))))
      const bound = Duration.toMillis(delayBound(policy, 4))
      assert.isAbove(samples.filter((ms) => ms < bound / 4).length, 40)
      assert.isAbove(samples.filter((ms) => ms > (3 * bound) / 4).length, 40)
    })
  )

  it("maxAttempts 1 never retries", () =>
    Effect.runPromise(
      Effect.gen(function* () {
        const delay = yield* delayAfterAttempt(retrySchedule({ ...policy, maxAttempts: 1 }), 1)
        assert.isTrue(Option.isNone(delay))
      })
    ))

  it("Retry-After: seconds, HTTP dates, garbage", () => {
    const now = Date.parse("2026-01-01T00:00:00Z")
    assert.deepStrictEqual(parseRetryAfter("2", now), Option.some(Duration.seconds(2)))
    assert.deepStrictEqual(
      parseRetryAfter("Thu, 01 Jan 2026 00:00:30 GMT", now).pipe(Option.map(Duration.toSeconds)),
      Option.some(30)
    )
    assert.isTrue(Option.isNone(parseRetryAfter(undefined, now)))
    assert.isTrue(Option.isNone(parseRetryAfter("soon", now)))
    assert.isTrue(Option.isNone(parseRetryAfter("-5", now)))
  })
})
