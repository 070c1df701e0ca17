import { Context, type Effect, type Option } from "effect"
import type { ApiKeyScope } from "../src/domain/ApiKeyInfo.ts"
import type { ApiKeyId, TenantId } from "../src/domain/Ids.ts"
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

/** What a valid key says about its request: its tenant, and the key itself. */
export interface ApiKeyOwner extends TenantAccess {
  readonly keyId: ApiKeyId
  readonly scope: ApiKeyScope
}

/**
 * Resolves an API key to its tenant. Implementations cache results briefly, so a request does not cost a database
 * round trip. A revocation is seen at once (`invalidateTenant` here, NOTIFY on `apiKeysChannel` on the other
 * replicas); the cache lifetime bounds it only while that notification cannot arrive, and bounds how long a changed
 * tenant quota takes to apply. An expired key is refused at once whatever the cache holds.
 */
export interface ApiKeyAuthShape {
  /**
   * None for unknown, malformed, revoked or expired keys; a failed lookup is an error (503), never a silent 401. A key
   * found valid has its `last_used_at` written, off the request, at most about once a minute.
   */
  readonly authenticate: (key: string) => Effect.Effect<Option.Option<ApiKeyOwner>>
  /**
   * `authenticate` for a client already refused on its quota: a key neither cached nor seen valid recently on this
   * process is reported unknown without a database lookup (a flood of made-up keys must cost no queries).
   */
  readonly authenticateIfKnown: (key: string) => Effect.Effect<Option.Option<ApiKeyOwner>>
  /**
   * Forgets what this process cached about the tenant's keys (lookups in flight included): the next request with any
   * of them asks the database. Call it once a change to the tenant's keys has committed; the other replicas learn of
   * it from `pg_notify('codex_api_keys', <tenant id>)`, sent by the same transaction.
   */
  readonly invalidateTenant: (tenantId: TenantId) => Effect.Effect<void>
  /**
   * The tenant an operator acts as (the admin token with `Codex-Tenant: <id>`; the caller checked the token): None for
   * an unknown, malformed or deleting tenant. Cached and forgotten as keys are (`invalidateTenant`).
   */
  readonly operatorTenant: (tenantId: string) => Effect.Effect<Option.Option<TenantAccess>>
}

export class ApiKeyAuth extends Context.Service<ApiKeyAuth, ApiKeyAuthShape>()("codex/ApiKeyAuth") {}
