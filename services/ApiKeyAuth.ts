import { Context, type Effect, type Option } from "effect"
import type { TenantId } from "../src/domain/Ids.ts"
import type { Quota } from "./RateLimit.ts"

/** What a valid key says about its request: the tenant, and what the rate limiter needs to know about it. */
export interface ApiKeyOwner {
  readonly tenantId: TenantId
  /** The tenant's own rate limit; undefined = the default quota. */
  readonly rateLimit: Quota | undefined
}

/**
 * Resolves an API key to its tenant. Implementations cache results briefly, so a request does not cost a database
 * round trip; the cache lifetime bounds how long a revoked key keeps working (and how long a changed tenant quota
 * takes to apply).
 */
export interface ApiKeyAuthShape {
  /** None for unknown, malformed or revoked keys; a failed lookup is an error (503), never a silent 401. */
  readonly authenticate: (key: string) => Effect.Effect<Option.Option<ApiKeyOwner>>
  /**
   * `authenticate` for a client already refused on its quota: a key neither cached nor seen valid recently on this
   * process is reported unknown without a database lookup (a flood of made-up keys must cost no queries).
   */
  readonly authenticateIfKnown: (key: string) => Effect.Effect<Option.Option<ApiKeyOwner>>
}

export class ApiKeyAuth extends Context.Service<ApiKeyAuth, ApiKeyAuthShape>()("codex/ApiKeyAuth") {}
