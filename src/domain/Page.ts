import type { Option } from "effect"

/** One page of a list, newest first: at most `limit` items older than the cursor `before` (an id). */
export interface PageRequest {
  readonly limit: number
  readonly before: Option.Option<string>
}

export interface PageResult<A> {
  readonly items: ReadonlyArray<A>
  readonly hasMore: boolean
}
