import { Schema } from "effect"
import { OccurredAt } from "../domain/Event.ts"

/** `?limit=&cursor=` on every list: newest first; `cursor` is the `nextCursor` of the previous page. */
/** A creation-time window on a list: `since` (inclusive) and `until` (exclusive), ISO 8601 with an offset. */
export const TimeWindowQuery = {
  since: Schema.optional(
    OccurredAt.annotate({
      description: "Only what was created at or after this time.",
      examples: ["2026-12-01T00:00:00Z"]
    })
  ),
  until: Schema.optional(
    OccurredAt.annotate({ description: "Only what was created before this time.", examples: ["2026-12-02T00:00:00Z"] })
  )
}

export const PageQuery = {
  limit: Schema.optional(
    Schema.NumberFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: 100 })).annotate({
      description: "Page size, 1..100 (default 50)."
    })
  ),
  cursor: Schema.optional(
    Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_-]{1,256}$/)).annotate({
      description:
        "Opaque cursor: the `nextCursor` of the previous page of the same list, unchanged (400 for any other value)."
    })
  )
}

export const defaultPageSize = 50

export const Page = <S extends Schema.Top>(item: S, identifier: string) =>
  Schema.Struct({
    data: Schema.Array(item),
    nextCursor: Schema.NullOr(Schema.String).annotate({
      description: "Pass as `cursor` to get the next page; null on the last page."
    })
  }).annotate({ identifier })
