import { Context, type Effect, type Option } from "effect"
import type { ApiKeyInfo, ApiKeyScope, CreatedApiKey, Revocation } from "../src/domain/ApiKeyInfo.ts"
import type { ApiKeyId, TenantId } from "../src/domain/Ids.ts"
import type { PageRequest, PageResult } from "../src/domain/Page.ts"

export interface NewApiKey {
  readonly name: string
  readonly scope: ApiKeyScope
  /** Undefined = never expires. */
  readonly expiresAt: Date | undefined
}

/**
 * A tenant's API keys, managed by the tenant itself (`/v1/api-keys`) and listed by the admin. Every revocation takes
 * effect at once on every replica (ApiKeyAuth's `invalidateTenant` here, NOTIFY for the others).
 */
export interface ApiKeysShape {
  /** None when the tenant no longer exists. */
  readonly create: (tenantId: TenantId, input: NewApiKey) => Effect.Effect<Option.Option<CreatedApiKey>>
  /** Newest first, revoked and expired keys included; None when the tenant does not exist. */
  readonly list: (tenantId: TenantId, page: PageRequest) => Effect.Effect<Option.Option<PageResult<ApiKeyInfo>>>
  /**
   * Revokes one of the tenant's keys; revoking a revoked key keeps the first revocation time. Refused
   * (`last-full-key`) when it is the tenant's last live full key, unless `confirmed`: the check and the revocation are
   * one step under the tenant's row lock, so two concurrent revocations cannot both remove "the other" full key.
   */
  readonly revoke: (tenantId: TenantId, id: ApiKeyId, confirmed: boolean) => Effect.Effect<Revocation>
  /** The admin's revocation: any tenant's key, no last-key check. False when no such key exists. */
  readonly revokeAny: (id: ApiKeyId) => Effect.Effect<boolean>
}

export class ApiKeys extends Context.Service<ApiKeys, ApiKeysShape>()("codex/ApiKeys") {}
