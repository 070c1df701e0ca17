import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
import { DeliveryList, DeliveryWithAttempts } from "../domain/Delivery.ts"
import { NotFound } from "./Problems.ts"
import { TenantAuth } from "./Security.ts"

export class DeliveriesApi extends HttpApiGroup.make("deliveries")
  .add(
    HttpApiEndpoint.get("listForEvent", "/events/:id/deliveries", {
      params: { id: Schema.String },
      success: DeliveryList,
      error: NotFound
    }).annotateMerge(OpenApi.annotations({ summary: "The deliveries of an event, one per matching endpoint" })),
    HttpApiEndpoint.get("get", "/deliveries/:id", {
      params: { id: Schema.String },
      success: DeliveryWithAttempts,
      error: NotFound
    }).annotateMerge(OpenApi.annotations({ summary: "A delivery with every attempt" }))
  )
  .middleware(TenantAuth)
  .prefix("/v1")
  .annotateMerge(
    OpenApi.annotations({
      title: "Deliveries",
      description: "Each event sent to each matching endpoint, signed, retried with backoff; every attempt recorded."
    })
  ) {}
