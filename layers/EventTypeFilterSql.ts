import type { SqlClient, Statement } from "effect/sql"

/**
 * Whether the endpoint `e` names `type` in its filter: the type itself, or a `prefix.*` wildcard
 * (EventTypeFilter.matchesPattern in SQL). An empty filter names nothing: what it takes is the caller's to say.
 */
export const namesEventType = (sql: SqlClient.SqlClient, type: Statement.Fragment): Statement.Fragment => sql`
  (${type} = ANY (e.event_types)
   OR EXISTS (SELECT 1 FROM unnest(e.event_types) AS p(pattern)
              WHERE right(p.pattern, 2) = '.*' AND starts_with(${type}, left(p.pattern, -1))))`
