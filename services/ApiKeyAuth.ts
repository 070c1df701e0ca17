import { Context, type Effect, type Option } from "effect"
import type { TenantCredential } from "../src/domain/ApiKey.ts"
import type { ApiKeyScope } from "../src/domain/ApiKeyInfo.ts"
import type { TenantId } from "../src/domain/Ids.ts"
import type { Quota } from "./RateLimit.ts"

/** The tenant a request acts as, and what the rate limiter and the publish path need to know of it. */
export interface TenantAccess {
  readonly tenantId: TenantId
  /** The tenant's own rate limit; undefined = the default quota. */
  readonly rateLimit: Quota | undefined
  /**
   * Whether publishing must ask the event-type catalog: the tenant is strict or has types in it. False: a publish
   * needs no catalog lookup. Changing either forgets the tenant's cached keys (like a revocation).
   */
  readonly catalogInUse: boolean
}

/**
 * What a valid credential says about its request: its tenant, and the credential itself — an API key, or a portal
 * session's token (`cps_...`), the tenant's other credential. A read-only portal session has the `read` scope.
 */
export interface ApiKeyOwner extends TenantAccess {
  readonly credential: TenantCredential
  readonly scope: ApiKeyScope
}

/**
 * Resolves an API key — or a portal session's token — to its tenant. Both share the cache, the invalidations and the
 * NOTIFY channel, so a revoked session stops at once like a key. Implementations cache results briefly, so a request
 * does not cost a database round trip. A revocation is seen at once (`invalidateTenant` here, NOTIFY on `apiKeysChannel` on the other
 * replicas); the cache lifetime bounds it only while that notification cannot arrive, and bounds how long a changed
 * tenant quota takes to apply. An expired key is refused at once whatever the cache holds.
 */
export interface ApiKeyAuthShape {
  /**
   * None for unknown, malformed, revoked or expired keys and portal sessions; a failed lookup is an error (503), never a silent 401. A key
   * found valid has its `last_used_at` written, off the request, at most about once a minute.
   */
  readonly authenticate: (key: string) => Effect.Effect<Option.Option<ApiKeyOwner>>
  /**
   * `authenticate` for a client already refused on its quota: a key neither cached nor seen valid recently on this
   * process is reported unknown without a database lookup (a flood of made-up keys must cost no queries).
   */
  readonly authenticateIfKnown: (key: string) => Effect.Effect<Option.Option<ApiKeyOwner>>
  /**
   * Forgets what this process cached about the tenant's keys and portal sessions (lookups in flight included): the next request with any
   * of them asks the database. Call it once a change to the tenant's keys has committed; the other replicas learn of
   * it from `pg_notify('codex_api_keys', <tenant id>)`, sent by the same transaction.
   */
  readonly invalidateTenant: (tenantId: TenantId) => Effect.Effect<void>
  /**
   * The tenant an operator acts as (the admin token with `Codex-Tenant: <id>`; the caller checked the token): None for
   * an unknown, malformed or deleting tenant. Cached and forgotten as keys are (`invalidateTenant`).
   */
  readonly operatorTenant: (tenantId: string) => Effect.Effect<Option.Option<TenantAccess>>
  /**
   * The same invalidations for other per-tenant caches (the publish admissions of the event-type catalog): note
   * `epoch()` when a lookup starts; its answer is stale once `isStale(tenantId, thatEpoch)`.
   */
  readonly changes: {
    readonly epoch: () => number
    readonly isStale: (tenantId: TenantId, epoch: number) => boolean
  }
}

export class ApiKeyAuth extends Context.Service<ApiKeyAuth, ApiKeyAuthShape>()("codex/ApiKeyAuth") {}
