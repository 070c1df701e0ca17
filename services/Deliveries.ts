import { Context, type Effect, type Option } from "effect"
import type { SqlError } from "effect/sql"
import type { Delivery, DeliveryWithAttempts } from "../src/domain/Delivery.ts"
import type { DeliveryId, EventId, TenantId } from "../src/domain/Ids.ts"

/** Reading deliveries and their attempts, scoped by tenant. */
export interface DeliveriesShape {
  /** The deliveries of one event (one per matching endpoint), oldest first; None when the event is not the tenant's. */
  readonly listForEvent: (
    tenantId: TenantId,
    eventId: EventId
  ) => Effect.Effect<Option.Option<ReadonlyArray<Delivery>>, SqlError.SqlError>
  readonly get: (
    tenantId: TenantId,
    id: DeliveryId
  ) => Effect.Effect<Option.Option<DeliveryWithAttempts>, SqlError.SqlError>
}

export class Deliveries extends Context.Service<Deliveries, DeliveriesShape>()("codex/Deliveries") {}
