import { Context, type Effect, type Option } from "effect"
import type { SqlError } from "effect/sql"
import type { ApiKeyId, TenantId } from "../src/domain/Ids.ts"
import type {
  CreatedTenant,
  CreateTenant,
  IssuedApiKey,
  Tenant,
  TenantDetail,
  UpdateTenant
} from "../src/domain/Tenant.ts"

export interface PageRequest {
  readonly limit: number
  /** Return items older than this id (ids are time-ordered). */
  readonly before: Option.Option<string>
}

export interface PageResult<A> {
  readonly items: ReadonlyArray<A>
  readonly hasMore: boolean
}

/** Tenants and their API keys: the admin API's data. */
export interface TenantsShape {
  readonly create: (input: CreateTenant) => Effect.Effect<CreatedTenant, SqlError.SqlError>
  /** None when the tenant does not exist. */
  readonly update: (id: TenantId, patch: UpdateTenant) => Effect.Effect<Option.Option<Tenant>, SqlError.SqlError>
  readonly list: (page: PageRequest) => Effect.Effect<PageResult<Tenant>, SqlError.SqlError>
  readonly get: (id: TenantId) => Effect.Effect<Option.Option<TenantDetail>, SqlError.SqlError>
  /** None when the tenant does not exist. */
  readonly issueApiKey: (tenantId: TenantId) => Effect.Effect<Option.Option<IssuedApiKey>, SqlError.SqlError>
  /** False when no such key exists; revoking a revoked key is a no-op that keeps the first revocation time. */
  readonly revokeApiKey: (id: ApiKeyId) => Effect.Effect<boolean, SqlError.SqlError>
}

export class Tenants extends Context.Service<Tenants, TenantsShape>()("codex/Tenants") {}
