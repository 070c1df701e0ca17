import { Context, type Effect } from "effect"

/** What one purge pass removed. */
export interface PurgeReport {
  /** Events removed, each with its deliveries and their attempts. */
  readonly events: number
  /** Active tenants looked at. */
  readonly tenants: number
  /** Deleted tenants whose every row is now gone (DELETE /admin/tenants/{id}). */
  readonly tenantsRemoved: number
}

/**
 * Removes what is past retention (RETENTION, or the tenant's own): events with no pending delivery, with their
 * deliveries and attempts, in short batches, so that publishing never waits on it. Reads already hide all of it
 * (layers/RetentionSql.ts): the purge only gives the space back. The same pass removes the rows of deleted tenants
 * (layers/TenantRemoval.ts).
 */
export interface RetentionPurgeShape {
  /** One pass over every tenant. */
  readonly purge: Effect.Effect<PurgeReport>
}

export class RetentionPurge extends Context.Service<RetentionPurge, RetentionPurgeShape>()("codex/RetentionPurge") {}
