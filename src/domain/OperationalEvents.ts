import { Schema } from "effect"

/**
 * Operational events: what codex-api itself tells a tenant about its endpoints and deliveries, as ordinary events in
 * the tenant's stream (stored, listed, signed, retried, replayable) under the reserved prefix `codex.`. Tenants cannot
 * publish them. They reach only the endpoints that subscribe to them by name (`codex.*`, `codex.endpoint.*`, or an
 * exact type): an endpoint taking "every event" (no filter) does not get them, so that adding them changed nothing for
 * existing receivers. An event about an endpoint is never delivered to that endpoint.
 */
export const operationalPrefix = "codex."

/** Whether a type is in the reserved `codex.` namespace. */
export const isOperationalType = (type: string): boolean => type.startsWith(operationalPrefix)

export const EndpointCreated = "codex.endpoint.created"
export const EndpointUpdated = "codex.endpoint.updated"
export const EndpointDeleted = "codex.endpoint.deleted"
export const EndpointDisabled = "codex.endpoint.disabled"
export const EndpointEnabled = "codex.endpoint.enabled"
export const DeliveryExhausted = "codex.delivery.exhausted"
export const DeliveryRecovered = "codex.delivery.recovered"
export const TestEvent = "codex.test"

const endpointId = Schema.String.annotate({ description: "The endpoint the event is about." })

/** `codex.endpoint.created` and `codex.endpoint.updated`: the endpoint as it is now (its URL is not repeated here). */
export const EndpointStateData = Schema.Struct({
  endpointId,
  description: Schema.String,
  eventTypes: Schema.Array(Schema.String),
  enabled: Schema.Boolean
}).annotate({ identifier: "CodexEndpointState" })

/** `codex.endpoint.deleted` and `codex.endpoint.enabled`. */
export const EndpointRefData = Schema.Struct({ endpointId }).annotate({ identifier: "CodexEndpointRef" })

/** Why an endpoint was disabled: a 410 Gone from its receiver, failing for ENDPOINT_DISABLE_AFTER, or by a PATCH. */
export const DisableReason = Schema.Literals(["gone", "failing", "manual"])
export type DisableReason = typeof DisableReason.Type

/** `codex.endpoint.disabled`. */
export const EndpointDisabledData = Schema.Struct({ endpointId, reason: DisableReason }).annotate({
  identifier: "CodexEndpointDisabled"
})

/** `codex.delivery.exhausted`: a delivery used its last attempt and failed. */
export const DeliveryExhaustedData = Schema.Struct({
  deliveryId: Schema.String,
  eventId: Schema.String,
  eventType: Schema.String,
  endpointId,
  attempts: Schema.Int,
  lastStatus: Schema.NullOr(Schema.Int),
  lastError: Schema.NullOr(Schema.String)
}).annotate({ identifier: "CodexDeliveryExhausted" })

/** `codex.delivery.recovered`: an endpoint whose attempts had all failed since `failingSince` succeeded again. */
export const DeliveryRecoveredData = Schema.Struct({
  endpointId,
  deliveryId: Schema.String.annotate({ description: "The delivery whose attempt succeeded." }),
  failingSince: Schema.String.annotate({
    description: "When its attempts started failing (ISO 8601); enabling a disabled endpoint restarts the count."
  })
}).annotate({ identifier: "CodexDeliveryRecovered" })

/** `codex.test`: sent by `POST /v1/endpoints/{id}/test` to that endpoint only. */
export const TestEventData = Schema.Struct({
  endpointId,
  message: Schema.String
}).annotate({ identifier: "CodexTest" })

/** What a test event says. */
export const codexTestMessage = "A test event from codex-api: your endpoint receives and verifies webhooks."

/** Each operational type and the schema of its `data`. */
export const operationalEventData = {
  [EndpointCreated]: EndpointStateData,
  [EndpointUpdated]: EndpointStateData,
  [EndpointDeleted]: EndpointRefData,
  [EndpointDisabled]: EndpointDisabledData,
  [EndpointEnabled]: EndpointRefData,
  [DeliveryExhausted]: DeliveryExhaustedData,
  [DeliveryRecovered]: DeliveryRecoveredData,
  [TestEvent]: TestEventData
} as const
