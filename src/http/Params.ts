import { Effect, Option, Schema } from "effect"
import type { PageRequest, PageResult } from "../../services/Tenants.ts"
import { defaultPageSize } from "../api/Pagination.ts"
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

export const pageRequest = (query: {
  readonly limit?: number | undefined
  readonly cursor?: string | undefined
}): PageRequest => ({
  limit: query.limit ?? defaultPageSize,
  before: Option.fromNullishOr(query.cursor)
})

/** The cursor of the next page is the id of this page's last item (keyset pagination on time-ordered ids). */
export const pageResponse = <A extends { readonly id: string }>(result: PageResult<A>) => ({
  data: result.items,
  nextCursor: result.hasMore ? (result.items.at(-1)?.id ?? null) : null
})
