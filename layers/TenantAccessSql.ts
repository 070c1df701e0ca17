import { Duration } from "effect"
import type { Quota } from "../services/RateLimit.ts"

/** The tenant's own quota from its two nullable columns; undefined = the default quota. */
export const quotaOf = (row: {
  readonly rate_limit_max: number | null
  readonly rate_limit_window_seconds: number | null
}): Quota | undefined =>
  row.rate_limit_max === null || row.rate_limit_window_seconds === null
    ? undefined
    : { limit: row.rate_limit_max, window: Duration.seconds(row.rate_limit_window_seconds) }

/** Whether the tenant (`t`) is strict or has catalog types: a publish then asks the catalog. */
export const catalogInUseColumn =
  "(t.strict_event_types OR EXISTS (SELECT 1 FROM event_types et WHERE et.tenant_id = t.id))"
