import { Option } from "effect"
import type { SqlClient, Statement } from "effect/sql"
import { idRange, type TimeRange } from "../src/domain/Search.ts"

/**
 * `AND`-conditions keeping the rows created in the window: on `created_at`, exactly, and on the ids, widened by the
 * clocks' possible skew (src/domain/Search.ts), so that the index on `(tenant_id, id)` reads only the window. `alias`
 * names the table when the query joins (`d.`).
 */
export const createdWithin = (
  sql: SqlClient.SqlClient,
  prefix: string,
  range: TimeRange,
  alias = ""
): Statement.Fragment => {
  const column = (name: string) => sql.unsafe(`${alias}${name}`)
  const ids = idRange(prefix, range)
  return sql`
    ${ids.from === undefined ? sql`` : sql`AND ${column("id")} >= ${ids.from}`}
    ${ids.below === undefined ? sql`` : sql`AND ${column("id")} < ${ids.below}`}
    ${Option.match(range.since, { onNone: () => sql``, onSome: (t) => sql`AND ${column("created_at")} >= ${t}` })}
    ${Option.match(range.until, { onNone: () => sql``, onSome: (t) => sql`AND ${column("created_at")} < ${t}` })}`
}
