import { Context, type Effect, type Option, type Schema } from "effect"
import type { NewEvent, Publication, StoredEvent } from "../src/domain/Event.ts"
import type { EventId, TenantId } from "../src/domain/Ids.ts"
import type { PageRequest, PageResult } from "../src/domain/Page.ts"
import type { EventSearch } from "../src/domain/Search.ts"
import type { KeyClaim } from "./IdempotencyStore.ts"

export interface EventsShape {
  /** Stores the event and its pending deliveries (the outbox) in one transaction. */
  readonly publish: (tenantId: TenantId, input: NewEvent) => Effect.Effect<Publication>
  /**
   * `publish` completing an Idempotency-Key claim in the same statement (its claim
   * completed by the write itself); the key stores a ref to the
   * event. None = the claim is no longer ours (taken over after the lock timeout): nothing was written.
   */
  readonly publishKeyed: (
    tenantId: TenantId,
    input: NewEvent,
    claim: KeyClaim
  ) => Effect.Effect<Option.Option<Publication>>
  /** What `publishKeyed` answered, again, from the ref it stored with the key. None = the event is gone. */
  readonly published: (tenantId: TenantId, ref: Schema.Json) => Effect.Effect<Option.Option<Publication>>
  /**
   * The tenant's events, newest first: of a type or `prefix.*` when given (operational `codex.*` events only when
   * named), created within the time window when given.
   */
  readonly list: (tenantId: TenantId, page: PageRequest, filter: EventSearch) => Effect.Effect<PageResult<StoredEvent>>
  readonly get: (tenantId: TenantId, id: EventId) => Effect.Effect<Option.Option<StoredEvent>>
  /**
   * Erases the event's data for good, and the response excerpts of its attempts, and cancels its pending deliveries;
   * its metadata, deliveries and attempts stay. Repeating it erases nothing more and keeps the first `expungedAt`.
   * None when the event is not the tenant's.
   */
  readonly expunge: (tenantId: TenantId, id: EventId) => Effect.Effect<Option.Option<StoredEvent>>
}

export class Events extends Context.Service<Events, EventsShape>()("codex/Events") {}
