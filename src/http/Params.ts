import { Effect, Option, Schema } from "effect"
import { NotFound } from "../api/Problems.ts"

/**
 * A path id, checked against its branded schema. A malformed id is a 404 like an unknown one: both name a resource
 * that does not exist, and a 400 would tell a prober which ids are well-formed.
 */
export const pathId =
  <S extends Schema.Top & { readonly Type: string }>(schema: S, what: string) =>
  (raw: string): Effect.Effect<S["Type"], NotFound> =>
    Schema.is(schema)(raw)
      ? Effect.succeed(raw as S["Type"])
      : Effect.fail(new NotFound({ detail: `No ${what} with this id.` }))

export const notFound = (what: string) => new NotFound({ detail: `No ${what} with this id.` })

/** Maps `Option.none()` from a lookup to a 404. */
export const orNotFound =
  (what: string) =>
  <A, E, R>(self: Effect.Effect<Option.Option<A>, E, R>): Effect.Effect<A, E | NotFound, R> =>
    Effect.flatMap(self, Option.match({ onNone: () => Effect.fail(notFound(what)), onSome: Effect.succeed }))
