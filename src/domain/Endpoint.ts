import { Schema } from "effect"
import { EndpointHeaders } from "./EndpointHeaders.ts"
import { EndpointFilter } from "./EventFilter.ts"
import { EventTypePattern } from "./EventTypeFilter.ts"
import { EndpointId } from "./Ids.ts"
import { approximateJsonSchema, isStorable, isStorableText, storableTextMessage, utf8Length } from "./StorableText.ts"

/** The database CHECK counts bytes (`octet_length`), not UTF-16 code units. */
const maxUrlBytes = 2048

export const EndpointUrl = Schema.String.check(
  Schema.isMaxLength(maxUrlBytes),
  Schema.makeFilter(
    (s: string) => utf8Length(s) <= maxUrlBytes || `must be at most ${maxUrlBytes} bytes (UTF-8)`,
    approximateJsonSchema()
  ),
  // No whitespace and no control characters anywhere (NUL, DEL, C1), which URL parsers strip or encode silently.
  Schema.isPattern(/^https?:\/\/[^\s\p{Cc}/?#]+[^\s\p{Cc}]*$/iu, { message: "must be an absolute http(s) URL" }),
  isStorable
).annotate({
  description: "Absolute http(s) URL, at most 2 KiB; https is required in staging and production.",
  examples: ["https://example.com/webhooks"]
})

export const EventTypeFilter = Schema.Array(EventTypePattern)
  .check(Schema.isMaxLength(100))
  .annotate({
    description:
      "Event types to receive: exact types or `prefix.*` wildcards. Empty = every event but codex-api's own " +
      "operational events (`codex.*`), which an endpoint receives only by naming them.",
    examples: [["order.created", "invoice.*"]]
  })

/**
 * Keys are checked on the whole record: a refined key schema would make Schema.Record silently DROP the keys that
 * fail it (`{"": "x"}` decoding to `{}`), where the caller must hear that the metadata was refused.
 */
const metadataKeyProblem = (metadata: Readonly<Record<string, string>>): string | undefined => {
  for (const key of Object.keys(metadata)) {
    if (key.length < 1 || key.length > 64) return "keys must be 1 to 64 characters long"
    if (!isStorableText(key)) return `keys ${storableTextMessage}`
  }
  return undefined
}

export const EndpointMetadata = Schema.Record(Schema.String, Schema.String.check(Schema.isMaxLength(512), isStorable))
  .check(
    Schema.isMaxProperties(16),
    Schema.makeFilter(
      (metadata: Readonly<Record<string, string>>) => metadataKeyProblem(metadata) ?? true,
      approximateJsonSchema({ propertyNames: { type: "string", minLength: 1, maxLength: 64 } })
    )
  )
  .annotate({
    description: "Up to 16 string pairs for your own use: keys 1..64 characters, values up to 512.",
    examples: [{ team: "billing" }]
  })

export const EndpointDescription = Schema.String.check(Schema.isMaxLength(1024), isStorable)

/** The per-endpoint throttle: deliveries per second, never exceeded across every worker and replica. */
export const EndpointRateLimit = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 10_000 })).annotate({
  description:
    "At most this many deliveries per second to the endpoint, counted across every worker and replica (1..10000), " +
    "spaced evenly; `null` for none. Deliveries over it wait their turn without using attempts.",
  examples: [5]
})

/** The endpoint's circuit breaker as the delivery worker sees it (shared by every replica when Redis is configured). */
export const EndpointHealth = Schema.Struct({
  circuit: Schema.Literals(["closed", "open", "half_open", "unknown"]).annotate({
    description:
      "closed: deliveries flow. open: the receiver kept failing; its deliveries wait until `openUntil` without " +
      "using attempts. half_open: the next attempt is a probe that closes or reopens the circuit. unknown: the " +
      "shared state could not be read."
  }),
  openUntil: Schema.NullOr(Schema.String).annotate({
    description: "While open: when the next attempt is let through as a probe (ISO 8601). Otherwise null."
  })
}).annotate({ identifier: "EndpointHealth" })
export type EndpointHealth = typeof EndpointHealth.Type

export const Endpoint = Schema.Struct({
  id: EndpointId,
  url: Schema.String,
  description: Schema.String,
  eventTypes: Schema.Array(Schema.String),
  enabled: Schema.Boolean,
  metadata: Schema.Record(Schema.String, Schema.String),
  headers: Schema.Record(Schema.String, Schema.String).annotate({
    description: "The custom headers sent with every delivery: their names, each value shown as `****`."
  }),
  rateLimit: Schema.NullOr(Schema.Int).annotate({ description: "Deliveries per second at most, or null: none." }),
  filter: Schema.NullOr(Schema.Record(Schema.String, Schema.Json)).annotate({
    description: "The payload filter (see CreateEndpoint), or null: every event its `eventTypes` take."
  }),
  createdAt: Schema.String,
  updatedAt: Schema.String,
  health: EndpointHealth
}).annotate({ identifier: "Endpoint" })
export type Endpoint = typeof Endpoint.Type

/** An endpoint as stored, without the health its circuit reports. */
export type EndpointRecord = Omit<Endpoint, "health">

export const CreateEndpoint = Schema.Struct({
  url: EndpointUrl,
  description: Schema.optionalKey(EndpointDescription),
  eventTypes: Schema.optionalKey(EventTypeFilter),
  enabled: Schema.optionalKey(Schema.Boolean),
  metadata: Schema.optionalKey(EndpointMetadata),
  headers: Schema.optionalKey(EndpointHeaders),
  filter: Schema.optionalKey(EndpointFilter),
  rateLimit: Schema.optionalKey(Schema.NullOr(EndpointRateLimit))
}).annotate({ identifier: "CreateEndpoint" })
export type CreateEndpoint = typeof CreateEndpoint.Type

export const UpdateEndpoint = Schema.Struct({
  url: Schema.optionalKey(EndpointUrl),
  description: Schema.optionalKey(EndpointDescription),
  eventTypes: Schema.optionalKey(EventTypeFilter),
  enabled: Schema.optionalKey(Schema.Boolean),
  metadata: Schema.optionalKey(EndpointMetadata),
  headers: Schema.optionalKey(EndpointHeaders),
  filter: Schema.optionalKey(Schema.NullOr(EndpointFilter)),
  rateLimit: Schema.optionalKey(Schema.NullOr(EndpointRateLimit))
}).annotate({ identifier: "UpdateEndpoint" })
export type UpdateEndpoint = typeof UpdateEndpoint.Type

export const EndpointSecret = Schema.Struct({
  secret: Schema.String.annotate({ description: "`whsec_` + base64: the Standard Webhooks signing secret." }),
  previousSecret: Schema.NullOr(Schema.String).annotate({
    description: "The secret before the last rotation, still used to sign until `previousSecretExpiresAt`."
  }),
  previousSecretExpiresAt: Schema.NullOr(Schema.String)
}).annotate({ identifier: "EndpointSecret" })
export type EndpointSecret = typeof EndpointSecret.Type
