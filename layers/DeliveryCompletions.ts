import { type Cause, Deferred, Effect, Fiber, Queue, type Scope } from "effect"
import type { SqlError } from "effect/sql"
import { isHttpStatus } from "../src/domain/Delivery.ts"
import type { Completion, CompletionState, DeliveryQueue } from "./DeliveryQueue.ts"

/** `CompletionState`, or `not recorded`: the database refused or did not answer; the lease then runs out. */
export type RecordedState = CompletionState | "not recorded"

/**
 * Group commit for finished attempts: each send hands its completion over and waits for it to be recorded; one fiber
 * records whatever has gathered since its last statement, in one statement (DeliveryQueue `complete`). Alone, a
 * completion is recorded at once; under load, those that finish while a statement runs share the next one, so the
 * database sees one statement per batch instead of one per send, and no completion waits on a timer.
 */
export interface DeliveryCompletions {
  /** Records one completion with the next batch; returns what became of its delivery. Never fails. */
  readonly record: (completion: Completion) => Effect.Effect<RecordedState>
  /** Records everything handed over so far, then stops taking more (shutdown). */
  readonly close: Effect.Effect<void>
}

interface Pending {
  readonly completion: Completion
  readonly recorded: Deferred.Deferred<RecordedState>
}

/**
 * The attempt again without what the receiver sent (no excerpt, no invalid status), should the database refuse the
 * record as it came back (a value a CHECK refuses, say): the delivery still moves on and uses up the attempt, where it
 * would otherwise be re-sent at every lease expiry, forever, without ever using an attempt.
 */
const withoutResponse = (completion: Completion): Completion => ({
  ...completion,
  result: {
    ...completion.result,
    statusCode:
      completion.result.statusCode !== null && isHttpStatus(completion.result.statusCode)
        ? completion.result.statusCode
        : null,
    error: "the attempt's result could not be stored as received; recorded without the response",
    excerpt: null
  }
})

export const makeDeliveryCompletions = (queue: DeliveryQueue): Effect.Effect<DeliveryCompletions, never, Scope.Scope> =>
  Effect.gen(function* () {
    const handedOver = yield* Queue.unbounded<Pending, Cause.Done>()

    const writeOne = (completion: Completion): Effect.Effect<CompletionState, SqlError.SqlError> =>
      completion.decision._tag === "Gone" ? queue.completeGone(completion) : queue.completeOne(completion)

    /** One completion on its own, then without the response; `not recorded` when neither is stored. */
    const recordAlone = (completion: Completion): Effect.Effect<RecordedState> =>
      writeOne(completion).pipe(
        Effect.catchCause((cause) =>
          Effect.logWarning(
            "delivery: the attempt could not be recorded as received; recording it without the response",
            cause
          ).pipe(
            Effect.annotateLogs({ deliveryId: completion.row.id, attempt: completion.attempt }),
            Effect.andThen(writeOne(withoutResponse(completion)))
          )
        ),
        Effect.catchCause((cause) =>
          Effect.logError("delivery: could not record the attempt; it is retried when the lease expires", cause).pipe(
            Effect.annotateLogs({ deliveryId: completion.row.id, attempt: completion.attempt }),
            Effect.as("not recorded" as const)
          )
        )
      )

    /** A batch in one statement (a 410 Gone is a transaction of its own); should it fail, each one alone. */
    const write = (batch: ReadonlyArray<Pending>) =>
      Effect.gen(function* () {
        const together = batch.filter((pending) => pending.completion.decision._tag !== "Gone")
        const alone = batch.filter((pending) => pending.completion.decision._tag === "Gone")
        if (together.length > 0) {
          const states = yield* queue.complete(together.map((pending) => pending.completion)).pipe(Effect.option)
          if (states._tag === "Some") {
            for (const pending of together) {
              yield* Deferred.succeed(
                pending.recorded,
                states.value.get(pending.completion.row.id) ?? "delivery deleted"
              )
            }
          } else {
            alone.push(...together)
          }
        }
        for (const pending of alone) {
          yield* Deferred.succeed(pending.recorded, yield* recordAlone(pending.completion))
        }
      })

    const flusher = yield* Effect.forkScoped(
      Effect.forever(Effect.flatMap(Queue.takeAll(handedOver), write)).pipe(Effect.catchTag("Done", () => Effect.void))
    )

    return {
      record: (completion) =>
        Effect.gen(function* () {
          const recorded = yield* Deferred.make<RecordedState>()
          const accepted = yield* Queue.offer(handedOver, { completion, recorded })
          if (!accepted) return "not recorded" as const
          return yield* Deferred.await(recorded)
        }),
      close: Effect.andThen(Queue.end(handedOver), Fiber.await(flusher)).pipe(Effect.asVoid)
    }
  })
