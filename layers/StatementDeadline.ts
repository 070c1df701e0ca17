import { type Cause, type Duration, Effect, Fiber, type Scope } from "effect"

/**
 * Gives up on a statement after `timeout` without waiting for it to be cancelled. `Effect.timeout` alone interrupts
 * the statement and waits for that: on a database that went silent the driver's cancel takes its own timeout (5 s),
 * so a 2-second deadline became 7. Here the statement runs in a fiber of `scope` and is stopped in the background.
 */
export const statementWithin =
  (scope: Scope.Scope, timeout: Duration.Input) =>
  <A, E, R>(statement: Effect.Effect<A, E, R>): Effect.Effect<A, E | Cause.TimeoutError, R> =>
    Effect.gen(function* () {
      const fiber = yield* Effect.forkIn(statement, scope)
      return yield* Fiber.join(fiber).pipe(
        Effect.timeout(timeout),
        Effect.onError(() => Effect.forkIn(Fiber.interrupt(fiber), scope))
      )
    })
