import { Context, Data, type Effect, type Option } from "effect"
import type { TenantId } from "../src/domain/Ids.ts"
import type { PageRequest, PageResult } from "../src/domain/Page.ts"
import type {
  CreatedTenant,
  CreateTenant,
  IssuedApiKey,
  Tenant,
  TenantDetail,
  UpdateTenant
} from "../src/domain/Tenant.ts"

/** Tenants and their API keys: the admin API's data. */
export interface TenantsShape {
  readonly create: (input: CreateTenant) => Effect.Effect<CreatedTenant>
  /** None when the tenant does not exist. */
  readonly update: (id: TenantId, patch: UpdateTenant) => Effect.Effect<Option.Option<Tenant>, TenantDeleting>
  readonly list: (page: PageRequest) => Effect.Effect<PageResult<Tenant>>
  readonly get: (id: TenantId) => Effect.Effect<Option.Option<TenantDetail>>
  /** None when the tenant does not exist. */
  readonly issueApiKey: (tenantId: TenantId) => Effect.Effect<Option.Option<IssuedApiKey>, TenantDeleting>
}

/** The tenant is being deleted (DELETE /admin/tenants/{id}): it can no longer change or get keys. */
export class TenantDeleting extends Data.TaggedError("TenantDeleting")<{ readonly tenantId: TenantId }> {}

export class Tenants extends Context.Service<Tenants, TenantsShape>()("codex/Tenants") {}
