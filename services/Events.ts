import { Context, type Effect, type Option, type Schema } from "effect"
import type { SqlError } from "effect/sql"
import type { Event, PublishEvent, PublishedEvent } from "../src/domain/Event.ts"
import type { EventId, TenantId } from "../src/domain/Ids.ts"
import type { OwnWrite } from "./IdempotencyStore.ts"
import type { PageRequest, PageResult } from "./Tenants.ts"

export interface EventsShape {
  /** Stores the event and its pending deliveries (the outbox) in one transaction. */
  readonly publish: (tenantId: TenantId, input: PublishEvent) => Effect.Effect<PublishedEvent, SqlError.SqlError>
  /**
   * `publish` completing an Idempotency-Key claim in the same statement (see OwnWrite); the key stores a ref to the
   * event. None = the claim is no longer ours (taken over after the lock timeout): nothing was written.
   */
  readonly publishKeyed: (
    tenantId: TenantId,
    input: PublishEvent,
    claim: OwnWrite
  ) => Effect.Effect<Option.Option<PublishedEvent>, SqlError.SqlError>
  /** What `publishKeyed` answered, again, from the ref it stored with the key. None = the event is gone. */
  readonly published: (
    tenantId: TenantId,
    ref: Schema.Json
  ) => Effect.Effect<Option.Option<PublishedEvent>, SqlError.SqlError>
  readonly list: (
    tenantId: TenantId,
    page: PageRequest,
    type: Option.Option<string>
  ) => Effect.Effect<PageResult<Event>, SqlError.SqlError>
  readonly get: (tenantId: TenantId, id: EventId) => Effect.Effect<Option.Option<Event>, SqlError.SqlError>
}

export class Events extends Context.Service<Events, EventsShape>()("codex/Events") {}
