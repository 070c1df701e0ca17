import { Context, Data, type Effect, type Option } from "effect"
import type { Admission, CatalogEventType } from "../src/domain/EventTypeCatalog.ts"
import type { TenantId } from "../src/domain/Ids.ts"
import type { PageRequest, PageResult } from "../src/domain/Page.ts"

/** A catalog entry to write: the schema and examples as checked by the caller (they compile, they match). */
export interface EventTypeFields {
  readonly description?: string
  /** Null removes the schema; undefined (on update) keeps it. */
  readonly schema?: Readonly<Record<string, unknown>> | null
  readonly examples?: ReadonlyArray<Readonly<Record<string, unknown>>>
  readonly deprecated?: boolean
  readonly archived?: boolean
}

/** What the catalog says about subscriptions in strict mode: the tenant's flag and its catalog's names. */
export interface SubscriptionCatalog {
  readonly strict: boolean
  readonly names: ReadonlyArray<string>
}

/**
 * A tenant's event-type catalog (`/v1/event-types`), and what publishing and subscribing read of it. Entries are
 * keyed by name within the tenant.
 */
export interface EventTypesShape {
  readonly create: (
    tenantId: TenantId,
    name: string,
    fields: EventTypeFields
  ) => Effect.Effect<CatalogEventType, EventTypeExists>
  /** The tenant's types, newest first. */
  readonly list: (tenantId: TenantId, page: PageRequest) => Effect.Effect<PageResult<CatalogEventType>>
  /** Every type of the tenant, by name (for the generated document). */
  readonly all: (tenantId: TenantId) => Effect.Effect<ReadonlyArray<CatalogEventType>>
  readonly get: (tenantId: TenantId, name: string) => Effect.Effect<Option.Option<CatalogEventType>>
  /** Absent fields keep their value. None when there is no such type. */
  readonly update: (
    tenantId: TenantId,
    name: string,
    fields: EventTypeFields
  ) => Effect.Effect<Option.Option<CatalogEventType>>
  /** False when there is no such type. */
  readonly delete: (tenantId: TenantId, name: string) => Effect.Effect<boolean>
  /**
   * What publishing `type` needs to know, in one indexed lookup: the tenant's strict flag, the type's entry, and its
   * schema text unless `knownVersion` is the entry's version (the caller's cached validator is current).
   */
  readonly admission: (tenantId: TenantId, type: string, knownVersion: string | undefined) => Effect.Effect<Admission>
  /** The strict flag and the names in the catalog (archived ones excluded), for checking an endpoint's filter. */
  readonly subscriptions: (tenantId: TenantId) => Effect.Effect<SubscriptionCatalog>
}

/** The tenant already has a type of this name. */
export class EventTypeExists extends Data.TaggedError("EventTypeExists")<{ readonly name: string }> {}

export class EventTypes extends Context.Service<EventTypes, EventTypesShape>()("codex/EventTypes") {}
