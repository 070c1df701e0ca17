import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { Event, EventType, PublishEvent, PublishedEvent } from "../domain/Event.ts"
import { CompletesOwnKey, Idempotency } from "./Idempotency.ts"
import { JsonBody } from "./JsonBody.ts"
import { Page, PageQuery } from "./Pagination.ts"
import { BadRequest, NotFound } from "./Problems.ts"
import { TenantAuth } from "./Security.ts"

export class EventsApi extends HttpApiGroup.make("events")
  .add(
    HttpApiEndpoint.post("publish", "/events", {
      payload: PublishEvent,
      success: PublishedEvent.pipe(HttpApiSchema.status(202))
    })
      .middleware(Idempotency)
      .annotate(CompletesOwnKey, true)
      .annotateMerge(
        OpenApi.annotations({
          summary: "Publish an event",
          description:
            "Stores the event and queues one delivery per enabled endpoint whose filter matches, in one transaction."
        })
      ),
    HttpApiEndpoint.get("list", "/events", {
      query: { ...PageQuery, type: Schema.optional(EventType) },
      success: Page(Event, "EventPage"),
      error: BadRequest
    }).annotateMerge(OpenApi.annotations({ summary: "List events, newest first" })),
    HttpApiEndpoint.get("get", "/events/:id", { params: { id: Schema.String }, success: Event, error: NotFound })
  )
  .middleware(JsonBody)
  .middleware(TenantAuth)
  .prefix("/v1")
  .annotateMerge(OpenApi.annotations({ title: "Events", description: "What happened in your system." })) {}
