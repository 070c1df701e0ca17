import { Context, type Effect } from "effect"
import type { TenantId } from "../src/domain/Ids.ts"

/**
 * Deleting a tenant (`DELETE /admin/tenants/{id}`): at once, its keys stop working on every replica and its
 * endpoints stop receiving; its rows are then removed in the background by the retention purge (RetentionPurgeLive),
 * the tenant row last.
 */
export interface TenantDeletionShape {
  /** False when no such tenant exists. Asking again while it is being deleted keeps the first request's time. */
  readonly request: (id: TenantId) => Effect.Effect<boolean>
}

export class TenantDeletion extends Context.Service<TenantDeletion, TenantDeletionShape>()("codex/TenantDeletion") {}
