import { Duration, Effect, Schedule } from "effect"

/**
 * How long an endpoint's circuit stays open, as the `Schedule` the breaker replays: the n-th opening in a row lasts
 * `min(max, base * 2^(n-1))`, then scaled by a random factor in [0.8, 1.2] (`Schedule.jittered`) so circuits that
 * opened together (a network blip trips many endpoints at once) do not all probe at the same instant. The cap comes
 * before the jitter, so even circuits at the cap spread out. `jitter: false` is for tests that step a TestClock.
 */
export interface OpenScheduleOptions {
  readonly base: Duration.Duration
  readonly max: Duration.Duration
  readonly jitter: boolean
}

export const openSchedule = (options: OpenScheduleOptions): Schedule.Schedule<Duration.Duration> => {
  const capped = Schedule.exponential(options.base, 2).pipe(
    Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, options.max)))
  )
  return options.jitter ? Schedule.jittered(capped) : capped
}

/** HTTP statuses that say the receiver is unwell (Polly's transient set): they count against its circuit. */
export const isTransientStatus = (status: number): boolean => status === 408 || status === 429 || status >= 500
