import { Option } from "effect"
import { Flag } from "effect/cli"

/** `--limit` and `--cursor` of every list: one page, newest first; `--cursor` is the `nextCursor` printed after it. */
export const pageFlags = {
  limit: Flag.Int("limit").pipe(Flag.withDescription("Page size, 1..100 (default 50)"), Flag.optional),
  cursor: Flag.String("cursor").pipe(
    Flag.withDescription("The next page: the cursor the last page printed"),
    Flag.optional
  )
}

/** The query members of the page flags that were given. */
export const pageQuery = (input: {
  readonly limit: Option.Option<number>
  readonly cursor: Option.Option<string>
}): { limit?: string; cursor?: string } => ({
  ...Option.match(input.limit, { onNone: () => ({}), onSome: (limit) => ({ limit: String(limit) }) }),
  ...Option.match(input.cursor, { onNone: () => ({}), onSome: (cursor) => ({ cursor }) })
})

/** Only the options that are set, as members: `{ ...given({ description }) }`. */
export const given = <T extends Record<string, Option.Option<unknown>>>(
  options: T
): { [K in keyof T]?: T[K] extends Option.Option<infer A> ? A : never } =>
  Object.fromEntries(
    Object.entries(options).flatMap(([key, value]) => (Option.isSome(value) ? [[key, value.value]] : []))
  ) as { [K in keyof T]?: T[K] extends Option.Option<infer A> ? A : never }
