import { Context, Data, type Effect, type Option } from "effect"
import type { Delivery, DeliveryStatus, DeliveryWithAttempts } from "../src/domain/Delivery.ts"
import type { DeliveryId, EndpointId, EventId, TenantId } from "../src/domain/Ids.ts"
import type { PageRequest, PageResult } from "../src/domain/Page.ts"
import type { DeliverySearch } from "../src/domain/Search.ts"

/** Reading deliveries and their attempts, scoped by tenant. */
export interface DeliveriesShape {
  /** The deliveries of one event (one per matching endpoint), oldest first; None when the event is not the tenant's. */
  readonly listForEvent: (tenantId: TenantId, eventId: EventId) => Effect.Effect<Option.Option<ReadonlyArray<Delivery>>>
  /** The deliveries to one endpoint, newest first; None when the endpoint is not the tenant's or was deleted. */
  readonly listForEndpoint: (
    tenantId: TenantId,
    endpointId: EndpointId,
    page: PageRequest,
    status: Option.Option<DeliveryStatus>
  ) => Effect.Effect<Option.Option<PageResult<Delivery>>>
  /** The tenant's deliveries matching every filter given, newest first. */
  readonly search: (
    tenantId: TenantId,
    filter: DeliverySearch,
    page: PageRequest
  ) => Effect.Effect<PageResult<Delivery>>
  readonly get: (tenantId: TenantId, id: DeliveryId) => Effect.Effect<Option.Option<DeliveryWithAttempts>>
  /**
   * Queues a finished delivery (failed, cancelled or succeeded) for an attempt now; a pending one is left as it is.
   * None when the delivery is not the tenant's; `EndpointDeleted` when its endpoint was deleted; `EventExpunged` when
   * its event's data was expunged.
   */
  readonly retry: (
    tenantId: TenantId,
    id: DeliveryId
  ) => Effect.Effect<Option.Option<Delivery>, EndpointDisabled | EndpointDeleted | EventExpunged>
  /**
   * Queues the endpoint's failed deliveries created since `since`, but those of expunged events; None when the endpoint is not the tenant's or was
   * deleted.
   */
  readonly recover: (
    tenantId: TenantId,
    endpointId: EndpointId,
    since: Date
  ) => Effect.Effect<Option.Option<number>, EndpointDisabled>
  /**
   * Stores a `codex.test` event and queues its one delivery, to this endpoint only (whatever its filter). None when
   * the endpoint is not the tenant's or was deleted; `EndpointDisabled` when it is disabled.
   */
  readonly sendTest: (
    tenantId: TenantId,
    endpointId: EndpointId
  ) => Effect.Effect<Option.Option<Delivery>, EndpointDisabled>
}

/** The endpoint is disabled: nothing would be sent, so nothing is queued. */
export class EndpointDisabled extends Data.TaggedError("EndpointDisabled")<{ readonly endpointId: string }> {}

/** The delivery's endpoint was deleted: the delivery stays readable, but there is nowhere to send it. */
export class EndpointDeleted extends Data.TaggedError("EndpointDeleted")<{ readonly endpointId: string }> {}

/** The delivery's event was expunged: the delivery stays readable, but there is nothing left to send. */
export class EventExpunged extends Data.TaggedError("EventExpunged")<{ readonly eventId: string }> {}

export class Deliveries extends Context.Service<Deliveries, DeliveriesShape>()("codex/Deliveries") {}
