import { Effect, Schema } from "effect"

/**
 * Small helpers for turning driver rows into API values. The driver types rows only by cast: `decodeRows` checks them.
 * Every query whose rows carry table columns goes through it; the worker's completion statements
 * (layers/DeliveryQueue.ts) return only ids and EXISTS flags they compute themselves, and keep the driver's type.
 */

/**
 * Rows decoded with `schema` (the decoder built once, where the repository defines its row); rows it refuses are a defect (the table does not hold what this code was written for:
 * a 500 and a logged cause naming the column, where a cast would have passed them on).
 */
export const decodeRows = <S extends Schema.Top & { readonly DecodingServices: never }>(schema: S) => {
  const decode = Schema.decodeUnknownEffect(Schema.Array(schema))
  return <E, R>(rows: Effect.Effect<ReadonlyArray<unknown>, E, R>): Effect.Effect<ReadonlyArray<S["Type"]>, E, R> =>
    Effect.flatMap(rows, (raw) => Effect.orDie(decode(raw)))
}

/** timestamptz values arrive as `Date`; the API speaks ISO 8601 strings. */
export const iso = (value: unknown): string =>
  value instanceof Date ? value.toISOString() : new Date(String(value)).toISOString()

export const isoOrNull = (value: unknown): string | null => (value === null || value === undefined ? null : iso(value))

/** Page of `limit` items from a query that fetched `limit + 1` rows: the extra row only says "there is more". */
export const toPage = <Row, A>(rows: ReadonlyArray<Row>, limit: number, toItem: (row: Row) => A) => ({
  items: rows.slice(0, limit).map(toItem),
  hasMore: rows.length > limit
})
