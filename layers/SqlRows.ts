/** Small helpers for turning driver rows into API values. Rows are typed only by cast (see effect.md §7). */

/** timestamptz values arrive as `Date`; the API speaks ISO 8601 strings. */
export const iso = (value: unknown): string =>
  value instanceof Date ? value.toISOString() : new Date(String(value)).toISOString()

export const isoOrNull = (value: unknown): string | null => (value === null || value === undefined ? null : iso(value))

/** Page of `limit` items from a query that fetched `limit + 1` rows: the extra row only says "there is more". */
export const toPage = <Row, A>(rows: ReadonlyArray<Row>, limit: number, toItem: (row: Row) => A) => ({
  items: rows.slice(0, limit).map(toItem),
  hasMore: rows.length > limit
})
