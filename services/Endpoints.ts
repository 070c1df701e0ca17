import { Context, type Effect, type Option } from "effect"
import type {
  CreateEndpoint,
  Endpoint,
  EndpointRecord,
  EndpointSecret,
  UpdateEndpoint
} from "../src/domain/Endpoint.ts"
import type { EndpointId, TenantId } from "../src/domain/Ids.ts"
import type { PageRequest, PageResult } from "../src/domain/Page.ts"

/**
 * A tenant's webhook endpoints. Every method is scoped by the tenant: other tenants' rows do not exist here, and
 * neither do deleted endpoints (their rows stay, for the history of their deliveries: see `delete`). The writes
 * (`create`, `update`) touch only the database, so they may run inside a transaction: a new endpoint's circuit is
 * closed by definition, and an update's answer gets its health from the caller, read before the transaction.
 */
export interface EndpointsShape {
  readonly create: (tenantId: TenantId, input: CreateEndpoint) => Effect.Effect<Endpoint>
  readonly list: (tenantId: TenantId, page: PageRequest) => Effect.Effect<PageResult<Endpoint>>
  readonly get: (tenantId: TenantId, id: EndpointId) => Effect.Effect<Option.Option<Endpoint>>
  readonly update: (
    tenantId: TenantId,
    id: EndpointId,
    patch: UpdateEndpoint
  ) => Effect.Effect<Option.Option<EndpointRecord>>
  /**
   * Marks the endpoint deleted, erases its signing secrets and cancels its pending deliveries, in one statement; its
   * deliveries and attempts stay. `false` when there is no such endpoint (or it was already deleted).
   */
  readonly delete: (tenantId: TenantId, id: EndpointId) => Effect.Effect<boolean>
  /**
   * The current secret, and the previous one while its overlap lasts. A current secret sealed under a key
   * `ENCRYPTION_KEYS` no longer lists is a defect (an operator's mistake, reported at start-up; `rotateSecret`
   * recovers the endpoint); a previous secret that cannot be opened is absent.
   */
  readonly getSecret: (tenantId: TenantId, id: EndpointId) => Effect.Effect<Option.Option<EndpointSecret>>
  /**
   * The old secret stays valid (deliveries are signed with both) for 24 hours; an old secret that cannot be opened is
   * dropped instead (so rotating recovers an endpoint whose secret was sealed under a lost key).
   */
  readonly rotateSecret: (tenantId: TenantId, id: EndpointId) => Effect.Effect<Option.Option<EndpointSecret>>
}

export class Endpoints extends Context.Service<Endpoints, EndpointsShape>()("codex/Endpoints") {}
