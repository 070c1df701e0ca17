import { Schema } from "effect"
import { EventData, EventType } from "./Event.ts"
import { matchesPattern } from "./EventTypeFilter.ts"
import { operationalEventData } from "./OperationalEvents.ts"
import { isStorable } from "./StorableText.ts"

/**
 * The event-type catalog (issue 22): what a tenant says about the types it publishes. A type may carry a JSON Schema
 * (draft 2020-12) for its events' `data` and examples of `data`; publishing a type with a schema validates `data`
 * against it (EventSchema). A deprecated type is still accepted (with a `Deprecation` header), an archived one is
 * refused. Types are addressed by name (`/v1/event-types/{name}`); names starting with `codex.` are reserved for the
 * operational events, `openapi.json` for the document generated from the catalog, and `.` / `..` (dot-segments).
 */

/** The name `GET /v1/event-types/openapi.json` takes: no catalog type may be called so. */
export const catalogDocumentName = "openapi.json"

export const EventTypeDescription = Schema.String.check(Schema.isMaxLength(1024), isStorable).annotate({
  description: "What the event means, for receivers (Markdown), up to 1024 characters."
})

/** A JSON Schema for `data`: an object (draft 2020-12), checked to compile when saved. */
export const EventTypeSchema = EventData.annotate({
  description:
    "A JSON Schema (draft 2020-12) that every event's `data` of this type must match; it must compile (422 " +
    "otherwise). Published events that do not match are refused with 422 naming each violation's JSON pointer.",
  examples: [{ type: "object", required: ["orderId"], properties: { orderId: { type: "string" } } }]
})

/** Examples of `data`: each must match the schema when there is one (422 naming the example's path otherwise). */
export const EventTypeExamples = Schema.Array(EventData)
  .check(Schema.isMaxLength(20))
  .annotate({ description: "Up to 20 examples of `data`, each matching `schema` when there is one." })

export const CatalogEventType = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  description: Schema.String,
  schema: Schema.NullOr(Schema.Record(Schema.String, Schema.Json)).annotate({
    description: "The JSON Schema for `data`, or null: any object is accepted."
  }),
  examples: Schema.Array(Schema.Record(Schema.String, Schema.Json)),
  deprecated: Schema.Boolean,
  deprecatedAt: Schema.NullOr(Schema.String).annotate({ description: "Since when it is deprecated (ISO 8601)." }),
  archived: Schema.Boolean,
  archivedAt: Schema.NullOr(Schema.String).annotate({ description: "Since when it is archived (ISO 8601)." }),
  createdAt: Schema.String,
  updatedAt: Schema.String
}).annotate({ identifier: "EventType" })
export type CatalogEventType = typeof CatalogEventType.Type

export const CreateEventType = Schema.Struct({
  name: EventType,
  description: Schema.optionalKey(EventTypeDescription),
  schema: Schema.optionalKey(Schema.NullOr(EventTypeSchema)),
  examples: Schema.optionalKey(EventTypeExamples),
  deprecated: Schema.optionalKey(Schema.Boolean),
  archived: Schema.optionalKey(Schema.Boolean)
}).annotate({ identifier: "CreateEventType" })
export type CreateEventType = typeof CreateEventType.Type

/** Absent members stay as they are; `schema: null` removes the schema. */
export const UpdateEventType = Schema.Struct({
  description: Schema.optionalKey(EventTypeDescription),
  schema: Schema.optionalKey(Schema.NullOr(EventTypeSchema)),
  examples: Schema.optionalKey(EventTypeExamples),
  deprecated: Schema.optionalKey(Schema.Boolean),
  archived: Schema.optionalKey(Schema.Boolean)
}).annotate({ identifier: "UpdateEventType" })
export type UpdateEventType = typeof UpdateEventType.Type

/** A catalog entry as the publishing path reads it. */
export interface CatalogEntry {
  /** Changes whenever the entry does (its id and its update time): the key of its compiled validator. */
  readonly version: string
  readonly deprecatedAt: Date | null
  readonly archived: boolean
  readonly hasSchema: boolean
}

/**
 * What the publishing path learns in one lookup: whether the tenant is strict, the entry of the type (if any), and
 * its schema text when the caller's cached validator is not of this version.
 */
export interface Admission {
  readonly strict: boolean
  readonly entry: CatalogEntry | undefined
  readonly schemaText: string | undefined
}

/** RFC 9745 `Deprecation` header value: `@<unix seconds>` of when the type was deprecated. */
export const deprecationHeader = (deprecatedAt: Date): string => `@${Math.floor(deprecatedAt.getTime() / 1000)}`

/** The operational types: in every tenant's catalog, as far as subscriptions and the generated document go. */
export const operationalTypeNames: ReadonlyArray<string> = Object.keys(operationalEventData)

/**
 * In strict mode, the first entry of an endpoint's `eventTypes` that names no type of the catalog (`names`, archived
 * ones left out) nor an operational type: an exact type not there, or a `prefix.*` matching none. Undefined: all do.
 */
export const unmatchedPattern = (patterns: ReadonlyArray<string>, names: ReadonlyArray<string>): string | undefined => {
  const known = [...names, ...operationalTypeNames]
  return patterns.find((pattern) => !known.some((name) => matchesPattern(pattern, name)))
}
