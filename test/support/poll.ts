import { Duration, Effect } from "effect"

/**
 * Waiting in tests, always with a deadline: `poll` (an Effect read again until it is done), `pollPromise` (the same
 * for Promise code: other processes, raw sockets) and `within` (one promise, bounded). Each fails the test on timeout
 * with a message naming what it waited for and, for the polls, the last value it read: a wait that gave up quietly
 * would let the assertions after it pass on nothing, and one without the last value leaves a failure unexplained.
 *
 * Never a fixed sleep: a poll returns as soon as the condition holds.
 *
 * @example
 * const row = yield* poll("the delivery to succeed", deliveryOf(api, id), (d) => d?.status === "succeeded")
 */

export interface PollOptions<A> {
  /** How long to keep reading before failing the test; default 10 s. */
  readonly timeoutMs?: number
  /** The pause between reads; default 20 ms. */
  readonly intervalMs?: number
  /** How the last value is written in the timeout message; default JSON, cut to 500 characters. */
  readonly show?: (value: A) => string
}

const defaultTimeoutMs = 10_000
const defaultIntervalMs = 20

export interface PollPromiseOptions<A> extends PollOptions<A> {
  /**
   * A read that throws counts as "not yet", its error shown as the last value (a server still starting refuses
   * connections); otherwise the error ends the poll.
   */
  readonly retryOnError?: boolean
}

/** A value as the timeout message shows it. */
export const showValue = (value: unknown): string => {
  if (value === undefined) return "undefined"
  try {
    // Headers (of a response read) serialise as {} otherwise.
    const json = JSON.stringify(value, (_, v: unknown) => (v instanceof Headers ? Object.fromEntries(v) : v))
    return (json ?? String(value)).slice(0, 500)
  } catch {
    return String(value).slice(0, 500)
  }
}

/** The one message every wait fails with. */
export const timeoutMessage = (what: string, timeoutMs: number, last?: { readonly shown: string }): string =>
  `timed out after ${timeoutMs} ms waiting for ${what}` +
  (last === undefined ? "" : `; the last value read: ${last.shown}`)

/** For `done`: the read found something (the read returns undefined until then). */
export const isDefined = <A>(value: A | undefined): value is A => value !== undefined

/**
 * Runs `read` every `intervalMs` until `done` holds of its value, and returns that value. Fails the test (a defect)
 * at the deadline, even while a read hangs, with `what` and the last value read.
 */
export function poll<A, B extends A, E, R>(
  what: string,
  read: Effect.Effect<A, E, R>,
  done: (value: A) => value is B,
  options?: PollOptions<A>
): Effect.Effect<B, E, R>
export function poll<A, E, R>(
  what: string,
  read: Effect.Effect<A, E, R>,
  done: (value: A) => boolean,
  options?: PollOptions<A>
): Effect.Effect<A, E, R>
export function poll<A, E, R>(
  what: string,
  read: Effect.Effect<A, E, R>,
  done: (value: A) => boolean,
  options: PollOptions<A> = {}
): Effect.Effect<A, E, R> {
  const timeoutMs = options.timeoutMs ?? defaultTimeoutMs
  const interval = Duration.millis(options.intervalMs ?? defaultIntervalMs)
  const show = options.show ?? showValue
  return Effect.suspend(() => {
    // Per run: the same poll Effect may be run more than once. Shown only on timeout: reads are frequent.
    let last: { readonly value: A } | undefined
    return Effect.gen(function* () {
      while (true) {
        const value = yield* read
        if (done(value)) return value
        last = { value }
        yield* Effect.sleep(interval)
      }
    }).pipe(
      Effect.timeoutOrElse({
        duration: Duration.millis(timeoutMs),
        orElse: () =>
          Effect.die(
            new Error(timeoutMessage(what, timeoutMs, { shown: last === undefined ? "(none yet)" : show(last.value) }))
          )
      })
    )
  })
}

/**
 * `poll` for Promise code: calls `read` every `intervalMs` until `done` holds of its value, and resolves with that
 * value; rejects at the deadline, even while a read hangs, with `what` and the last value read. A read that throws
 * ends the poll with its error, unless `retryOnError`.
 */
export function pollPromise<A, B extends A>(
  what: string,
  read: () => Promise<A>,
  done: (value: A) => value is B,
  options?: PollPromiseOptions<A>
): Promise<B>
export function pollPromise<A>(
  what: string,
  read: () => Promise<A>,
  done: (value: A) => boolean,
  options?: PollPromiseOptions<A>
): Promise<A>
export function pollPromise<A>(
  what: string,
  read: () => Promise<A>,
  done: (value: A) => boolean,
  options: PollPromiseOptions<A> = {}
): Promise<A> {
  const timeoutMs = options.timeoutMs ?? defaultTimeoutMs
  const intervalMs = options.intervalMs ?? defaultIntervalMs
  const show = options.show ?? showValue
  let last: { readonly value: A } | { readonly error: unknown } | undefined
  let stopped = false
  const loop = async (): Promise<A> => {
    while (!stopped) {
      const outcome = await read().then(
        (value) => ({ value }),
        (error: unknown) => {
          if (options.retryOnError !== true) throw error
          return { error }
        }
      )
      if ("value" in outcome && done(outcome.value)) return outcome.value
      last = outcome
      await new Promise((resolve) => setTimeout(resolve, intervalMs))
    }
    // Only reached after the deadline, whose rejection has already settled the race.
    return new Promise<never>(() => {})
  }
  const shown = () => ({
    shown:
      last === undefined ? "(none yet)" : "value" in last ? show(last.value) : `(the read failed) ${String(last.error)}`
  })
  return within(what, timeoutMs, loop(), shown).finally(() => {
    stopped = true
  })
}

/**
 * Resolves as `promise` does, or fails naming what never happened after `timeoutMs`. For one event (a socket closing,
 * a process exiting) rather than a value read again; `last`, when given, adds what was seen so far to the message.
 */
export const within = <A>(
  what: string,
  timeoutMs: number,
  promise: Promise<A>,
  last?: () => { readonly shown: string }
): Promise<A> => {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(timeoutMessage(what, timeoutMs, last?.()))), timeoutMs)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
