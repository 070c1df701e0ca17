import { Effect, Option } from "effect"
import { BadRequest } from "../api/Problems.ts"
import type { TimeRange } from "../domain/Search.ts"

/** A list's `since`/`until` (already checked as date-times by the contract), `since` before `until` or a 400. */
export const timeWindow = (query: {
  readonly since?: string | undefined
  readonly until?: string | undefined
}): Effect.Effect<TimeRange, BadRequest> => {
  const since = Option.map(Option.fromNullishOr(query.since), (text) => new Date(text))
  const until = Option.map(Option.fromNullishOr(query.until), (text) => new Date(text))
  if (Option.isSome(since) && Option.isSome(until) && since.value.getTime() >= until.value.getTime()) {
    return Effect.fail(new BadRequest({ detail: "`since` must be before `until`." }))
  }
  return Effect.succeed({ since, until })
}
