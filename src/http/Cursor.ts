import { Effect, Option } from "effect"
import { defaultPageSize } from "../api/Pagination.ts"
import { BadRequest } from "../api/Problems.ts"
import type { PageRequest, PageResult } from "../domain/Page.ts"

/**
 * Which list a page belongs to: its name (`events`, `deliveries:ep_...`), whose it is (a tenant id, or `admin`) and
 * what its ids look like. A cursor is valid only on the list, and for the owner, that issued it: another list's
 * cursor, another tenant's, or a made-up one would otherwise silently page from some arbitrary point.
 */
export interface PagedList {
  readonly name: string
  readonly owner: string
  readonly isId: (value: string) => boolean
}

/** `cursor` = base64url of `v1|<list>|<owner>|<last id>`: opaque to clients, checked without a query. */
const version = "v1"

export const encodeCursor = (list: PagedList, lastId: string): string =>
  Buffer.from(`${version}|${list.name}|${list.owner}|${lastId}`, "utf8").toString("base64url")

/** The id a cursor points after, when it was issued by this list for this owner. */
export const decodeCursor = (list: PagedList, cursor: string): string | undefined => {
  const text = Buffer.from(cursor, "base64url").toString("utf8")
  // Node skips what it cannot decode: a cursor that does not re-encode to itself was not one of ours.
  if (Buffer.from(text, "utf8").toString("base64url") !== cursor) return undefined
  const [tag, name, owner, id, ...rest] = text.split("|")
  if (rest.length > 0 || tag !== version || name !== list.name || owner !== list.owner || id === undefined) {
    return undefined
  }
  return list.isId(id) ? id : undefined
}

const badCursor = new BadRequest({
  detail: "The cursor is not one this list returned: pass back the `nextCursor` of the previous page, unchanged."
})

/** The page asked for: the size, and the id to continue after (400 for a cursor this list did not issue). */
export const pageRequest = (
  list: PagedList,
  query: { readonly limit?: number | undefined; readonly cursor?: string | undefined }
): Effect.Effect<PageRequest, BadRequest> => {
  const limit = query.limit ?? defaultPageSize
  if (query.cursor === undefined) return Effect.succeed({ limit, before: Option.none() })
  const id = decodeCursor(list, query.cursor)
  return id === undefined ? Effect.fail(badCursor) : Effect.succeed({ limit, before: Option.some(id) })
}

/** The cursor of the next page carries this page's last id (keyset pagination on time-ordered ids). */
export const pageResponse =
  (list: PagedList) =>
  <A extends { readonly id: string }>(result: PageResult<A>) => {
    const last = result.items.at(-1)
    return { data: result.items, nextCursor: result.hasMore && last !== undefined ? encodeCursor(list, last.id) : null }
  }
