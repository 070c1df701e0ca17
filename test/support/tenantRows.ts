import { Effect } from "effect"
import { SqlClient } from "effect/sql"

/**
 * How many rows of `table` a tenant has; of events, those it published (creating its endpoints also wrote
 * operational `codex.*` events, which are not what a test of publishing counts).
 */
export const countTenantRows = (table: "events" | "deliveries" | "endpoints", tenantId: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const published = table === "events" ? sql`AND NOT starts_with(type, 'codex.')` : sql``
    const [row] = yield* sql<{ readonly n: number }>`
      SELECT count(*)::int AS n FROM ${sql(table)} WHERE tenant_id = ${tenantId} ${published}`
    return row?.n ?? -1
  })
