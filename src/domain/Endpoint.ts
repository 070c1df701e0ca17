import { Schema } from "effect"
import { eventTypePattern } from "./EventTypeFilter.ts"
import { EndpointId } from "./Ids.ts"

export const EndpointUrl = Schema.String.check(
  Schema.isMaxLength(2048),
  Schema.isPattern(/^https?:\/\/[^\s/?#]+[^\s]*$/i, { message: "must be an absolute http(s) URL" })
).annotate({
  description: "Absolute http(s) URL, at most 2 KiB; https is required in staging and production.",
  examples: ["https://example.com/webhooks"]
})

export const EventTypeFilter = Schema.Array(
  Schema.String.check(Schema.isPattern(eventTypePattern, { message: "must be an event type or a `prefix.*`" }))
)
  .check(Schema.isMaxLength(100))
  .annotate({
    description: "Event types to receive: exact types or `prefix.*` wildcards. Empty = every event.",
    examples: [["order.created", "invoice.*"]]
  })

export const EndpointMetadata = Schema.Record(
  Schema.String.check(Schema.isBetweenLength(1, 64)),
  Schema.String.check(Schema.isMaxLength(512))
)
  .check(Schema.isMaxProperties(16))
  .annotate({ description: "Up to 16 string pairs for your own use.", examples: [{ team: "billing" }] })

export const EndpointDescription = Schema.String.check(Schema.isMaxLength(1024))

export const Endpoint = Schema.Struct({
  id: EndpointId,
  url: Schema.String,
  description: Schema.String,
  eventTypes: Schema.Array(Schema.String),
  enabled: Schema.Boolean,
  metadata: Schema.Record(Schema.String, Schema.String),
  createdAt: Schema.String,
  updatedAt: Schema.String
}).annotate({ identifier: "Endpoint" })
export type Endpoint = typeof Endpoint.Type

export const CreateEndpoint = Schema.Struct({
  url: EndpointUrl,
  description: Schema.optionalKey(EndpointDescription),
  eventTypes: Schema.optionalKey(EventTypeFilter),
  enabled: Schema.optionalKey(Schema.Boolean),
  metadata: Schema.optionalKey(EndpointMetadata)
}).annotate({ identifier: "CreateEndpoint" })
export type CreateEndpoint = typeof CreateEndpoint.Type

export const UpdateEndpoint = Schema.Struct({
  url: Schema.optionalKey(EndpointUrl),
  description: Schema.optionalKey(EndpointDescription),
  eventTypes: Schema.optionalKey(EventTypeFilter),
  enabled: Schema.optionalKey(Schema.Boolean),
  metadata: Schema.optionalKey(EndpointMetadata)
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
