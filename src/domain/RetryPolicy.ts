import { Duration, Effect, Option, Pull, Random, Schedule } from "effect"

/**
 * When to try a failed delivery again, as an Effect `Schedule`: exponential backoff (`base * 2^n`) capped at `max`,
 * with FULL jitter (AWS "Exponential Backoff And Jitter"): the delay before retry n is uniform in
 * `[0, min(max, base * 2^(n-1))]`.
 *
 * Why full jitter: it spreads the retries of many deliveries that failed together (a receiver outage) over the whole
 * window, which is what protects a recovering receiver; and it depends only on the attempt number, so the delay for
 * attempt n can be recomputed from the schedule after a restart from nothing but the persisted `attempt_count`.
 * Decorrelated jitter would need the previous delay persisted too, and `Schedule.jittered` (x0.8..1.2) keeps
 * synchronised failures almost synchronised.
 *
 * `maxAttempts` counts the first attempt: the schedule recurs `maxAttempts - 1` times, then it is done (the delivery
 * becomes `failed`).
 */
export interface RetryPolicyOptions {
  readonly maxAttempts: number
  readonly base: Duration.Duration
  readonly max: Duration.Duration
}

export const retrySchedule = (options: RetryPolicyOptions): Schedule.Schedule<Duration.Duration> =>
  Schedule.exponential(options.base, 2).pipe(
    Schedule.modifyDelay(({ duration }) =>
      Random.nextBetween(0, Duration.toMillis(Duration.min(duration, options.max))).pipe(
        Effect.map((ms) => Duration.millis(Math.round(ms)))
      )
    ),
    Schedule.upTo({ times: Math.max(0, options.maxAttempts - 1) })
  )

/** The upper bound of the delay before attempt `attempt` (2..maxAttempts): `min(max, base * 2^(attempt - 2))`. */
export const delayBound = (options: RetryPolicyOptions, attempt: number): Duration.Duration =>
  Duration.min(options.max, Duration.times(options.base, 2 ** Math.max(0, attempt - 2)))

/**
 * The delay to wait after attempt `attemptsMade` (1-based) failed, computed by stepping the schedule itself
 * `attemptsMade` times; None when the schedule is exhausted (no attempt left).
 */
export const delayAfterAttempt = (
  schedule: Schedule.Schedule<Duration.Duration>,
  attemptsMade: number
): Effect.Effect<Option.Option<Duration.Duration>> =>
  Effect.gen(function* () {
    const step = yield* Schedule.toStep(schedule)
    let delay = Duration.zero
    for (let n = 0; n < attemptsMade; n++) {
      const next = yield* step(0, undefined).pipe(
        Effect.map(([, d]) => Option.some(d)),
        Pull.catchDone(() => Effect.succeed(Option.none<Duration.Duration>()))
      )
      if (Option.isNone(next)) return Option.none()
      delay = next.value
    }
    return Option.some(delay)
  })

/** A `Retry-After` header (delta-seconds or an HTTP date), as a non-negative delay; None when absent or invalid. */
export const parseRetryAfter = (value: string | undefined, now: number): Option.Option<Duration.Duration> => {
  if (value === undefined) return Option.none()
  const trimmed = value.trim()
  if (/^\d+$/.test(trimmed)) return Option.some(Duration.seconds(Number(trimmed)))
  // An HTTP date (IMF-fixdate and the obsolete forms all name a weekday/month); anything else is invalid.
  const date = /[A-Za-z]/.test(trimmed) ? Date.parse(trimmed) : Number.NaN
  if (Number.isNaN(date)) return Option.none()
  return Option.some(Duration.millis(Math.max(0, date - now)))
}
