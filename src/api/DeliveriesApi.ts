import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import {
  Delivery,
  DeliveryList,
  DeliveryStatus,
  DeliveryWithAttempts,
  RecoverDeliveries,
  Recovered
} from "../domain/Delivery.ts"
import { EventType } from "../domain/Event.ts"
import { EndpointId } from "../domain/Ids.ts"
import { Idempotency } from "./Idempotency.ts"
import { JsonBody } from "./JsonBody.ts"
import { NoRequestBody } from "./NoRequestBody.ts"
import { Page, PageQuery, TimeWindowQuery } from "./Pagination.ts"
import { BadRequest, Conflict, NotFound } from "./Problems.ts"
import { TenantAuth } from "./Security.ts"

export class DeliveriesApi extends HttpApiGroup.make("deliveries")
  .add(
    HttpApiEndpoint.get("listForEvent", "/events/:id/deliveries", {
      params: { id: Schema.String },
      success: DeliveryList,
      error: NotFound
    }).annotateMerge(
      OpenApi.annotations({
        summary: "The deliveries of an event, one per matching endpoint",
        description:
          "Deliveries to endpoints deleted since stay listed, with `endpointDeleted: true`, and so do their attempts " +
          "(GET /v1/deliveries/{id})."
      })
    ),
    HttpApiEndpoint.get("listForEndpoint", "/endpoints/:id/deliveries", {
      params: { id: Schema.String },
      query: { ...PageQuery, status: Schema.optional(DeliveryStatus) },
      success: Page(Delivery, "DeliveryPage"),
      error: [NotFound, BadRequest]
    }).annotateMerge(
      OpenApi.annotations({
        summary: "The deliveries to an endpoint, newest first",
        description: "404 for a deleted endpoint, as every read of it: its deliveries stay readable under their events."
      })
    ),
    HttpApiEndpoint.get("search", "/deliveries", {
      query: {
        ...PageQuery,
        ...TimeWindowQuery,
        status: Schema.optional(DeliveryStatus),
        endpointId: Schema.optional(
          EndpointId.annotate({
            description: "Only deliveries to this endpoint (an endpoint id: anything else is a 400)."
          })
        ),
        eventType: Schema.optional(EventType.annotate({ description: "Only deliveries of events of this type." }))
      },
      success: Page(Delivery, "DeliveryPage"),
      error: BadRequest
    }).annotateMerge(
      OpenApi.annotations({
        summary: "Search the tenant's deliveries, newest first",
        description:
          "Every filter is optional and they combine: `status`, `endpointId` (deleted endpoints' deliveries " +
          "included), `eventType` (exact), and `since`/`until` on the delivery's creation time. Each is served by an " +
          "index. 400 when `since` is not before `until`."
      })
    ),
    HttpApiEndpoint.get("get", "/deliveries/:id", {
      params: { id: Schema.String },
      success: DeliveryWithAttempts,
      error: NotFound
    }).annotateMerge(OpenApi.annotations({ summary: "A delivery with every attempt" })),
    HttpApiEndpoint.post("retry", "/deliveries/:id/retry", {
      params: { id: Schema.String },
      success: Delivery.pipe(HttpApiSchema.status(202)),
      error: [NotFound, Conflict]
    })
      .middleware(Idempotency)
      .middleware(NoRequestBody)
      .annotateMerge(
        OpenApi.annotations({
          summary: "Send a delivery again",
          description:
            "Re-queues a failed, cancelled or delivered delivery for an attempt now: one more attempt, or what is " +
            "left of its retry budget if more. A pending delivery is already queued and is returned unchanged, so " +
            "retrying twice queues it once. 409 when its endpoint is disabled or was deleted, or its event's data was " +
            "expunged."
        })
      ),
    HttpApiEndpoint.post("recover", "/endpoints/:id/recover", {
      params: { id: Schema.String },
      payload: RecoverDeliveries,
      success: Recovered.pipe(HttpApiSchema.status(202)),
      error: [NotFound, Conflict]
    })
      .middleware(Idempotency)
      .annotateMerge(
        OpenApi.annotations({
          summary: "Re-queue an endpoint's failed deliveries",
          description:
            "After an outage of the receiver: every `failed` delivery to this endpoint created at or after `since` " +
            "is queued for an attempt now (as `retry` does for one), except those of events whose data was expunged. " +
            "409 when the endpoint is disabled."
        })
      ),
    HttpApiEndpoint.post("sendTest", "/endpoints/:id/test", {
      params: { id: Schema.String },
      success: Delivery.pipe(HttpApiSchema.status(202)),
      error: [NotFound, Conflict]
    })
      .middleware(Idempotency)
      .middleware(NoRequestBody)
      .annotateMerge(
        OpenApi.annotations({
          summary: "Send a test event to the endpoint",
          description:
            "Stores a `codex.test` event (`data`: `{ endpointId, message }`) and queues one delivery of it, to this " +
            "endpoint only, whatever its `eventTypes`: signed and retried like any other. Answers with the delivery, " +
            "so its attempts can be followed (`GET /v1/deliveries/{id}`). 409 when the endpoint is disabled."
        })
      )
  )
  .middleware(JsonBody)
  .middleware(TenantAuth)
  .prefix("/v1")
  .annotateMerge(
    OpenApi.annotations({
      title: "Deliveries",
      description: "Each event sent to each matching endpoint, signed, retried with backoff; every attempt recorded."
    })
  ) {}
