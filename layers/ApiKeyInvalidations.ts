import type { TenantId } from "../src/domain/Ids.ts"

/** How many tenants' invalidations are remembered one by one; older ones are folded into `floor`. */
const rememberedTenants = 1_000

export interface ApiKeyInvalidations {
  /** The current epoch: a lookup notes it when it starts. */
  readonly epoch: () => number
  /** Every lookup of the tenant's keys started before now is stale. */
  readonly tenant: (tenantId: TenantId) => void
  /** Every lookup started before now is stale (notifications may have been missed). */
  readonly all: () => void
  /** Whether a lookup of a key of `tenantId`, started at `epoch`, started before an invalidation of that tenant. */
  readonly isStale: (tenantId: TenantId, epoch: number) => boolean
}

/**
 * Which cached key lookups are stale, by epochs instead of deleting cache entries: a lookup still in flight when the
 * tenant's keys change (it may have read the row before the revocation committed) is caught too, when its answer is
 * read. Bounded: past `rememberedTenants`, the oldest tenant's invalidation raises the floor for every tenant, which
 * only costs lookups.
 */
export const makeApiKeyInvalidations = (): ApiKeyInvalidations => {
  let epoch = 0
  let floor = 0
  // Tenant → the epoch of its latest invalidation, oldest first.
  const byTenant = new Map<TenantId, number>()
  return {
    epoch: () => epoch,
    tenant: (tenantId) => {
      epoch += 1
      byTenant.delete(tenantId)
      byTenant.set(tenantId, epoch)
      if (byTenant.size > rememberedTenants) {
        const oldest = byTenant.entries().next()
        if (oldest.done !== true) {
          byTenant.delete(oldest.value[0])
          floor = Math.max(floor, oldest.value[1])
        }
      }
    },
    all: () => {
      epoch += 1
      floor = epoch
      byTenant.clear()
    },
    isStale: (tenantId, started) => started < floor || started < (byTenant.get(tenantId) ?? 0)
  }
}
