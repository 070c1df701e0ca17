import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { Event, PublishEvent, PublishedEvent } from "../domain/Event.ts"
import { EventTypePattern } from "../domain/EventTypeFilter.ts"
import { CompletesOwnKey, Idempotency } from "./Idempotency.ts"
import { JsonBody } from "./JsonBody.ts"
import { NoRequestBody } from "./NoRequestBody.ts"
import { Page, PageQuery, TimeWindowQuery } from "./Pagination.ts"
import { BadRequest, Conflict, NotFound, UnprocessableContent } from "./Problems.ts"
import { TenantAuth } from "./Security.ts"

/** The 202 of a publish declares its `Deprecation` header (RFC 9745), so that generated clients can read it. */
const declareDeprecationHeader = (operation: Record<string, unknown>): Record<string, unknown> => {
  const responses = (operation.responses ?? {}) as Record<string, Record<string, unknown>>
  const accepted = responses["202"]
  if (accepted === undefined) return operation
  const headers = (accepted.headers ?? {}) as Record<string, unknown>
  const deprecation = {
    description:
      "Present when the event's type is deprecated in the catalog: `@` and the Unix time (seconds) it was " +
      "deprecated at (RFC 9745). The event was accepted.",
    schema: { type: "string", pattern: "^@-?[0-9]+$" }
  }
  return {
    ...operation,
    responses: { ...responses, "202": { ...accepted, headers: { ...headers, Deprecation: deprecation } } }
  }
}

export class EventsApi extends HttpApiGroup.make("events")
  .add(
    HttpApiEndpoint.post("publish", "/events", {
      payload: PublishEvent,
      success: PublishedEvent.pipe(HttpApiSchema.status(202)),
      // 409 also answers a replay whose event is past retention (no longer stored).
      error: [UnprocessableContent, Conflict]
    })
      .middleware(Idempotency)
      .annotate(CompletesOwnKey, true)
      .annotateMerge(
        OpenApi.annotations({
          summary: "Publish an event",
          description:
            "Stores the event and queues one delivery per enabled endpoint whose filter matches, in one transaction. " +
            "Types starting with `codex.` are reserved for codex-api's operational events: 422. A type in your " +
            "event-type catalog (`/v1/event-types`) with a schema has its `data` validated: 422 with each violation's " +
            "JSON pointer in `errors`; an archived type is 422; a deprecated one is accepted with a `Deprecation: " +
            "@<unix seconds>` header (RFC 9745). In strict mode (`strictEventTypes`) a type not in the catalog is 422.",
          transform: declareDeprecationHeader
        })
      ),
    HttpApiEndpoint.get("list", "/events", {
      query: { ...PageQuery, ...TimeWindowQuery, type: Schema.optional(EventTypePattern) },
      success: Page(Event, "EventPage"),
      error: BadRequest
    }).annotateMerge(
      OpenApi.annotations({
        summary: "List events, newest first",
        description:
          "`type` is an event type or a `prefix.*` pattern. Without it, every event but codex-api's operational " +
          "events, which are listed when named (`type=codex.*`, `type=codex.endpoint.disabled`). `since` and `until` " +
          "bound the time the event was received (`createdAt`). 400 when `since` is not before `until`."
      })
    ),
    HttpApiEndpoint.get("get", "/events/:id", { params: { id: Schema.String }, success: Event, error: NotFound }),
    HttpApiEndpoint.delete("expunge", "/events/:id/data", {
      params: { id: Schema.String },
      success: Event,
      error: NotFound
    })
      .middleware(Idempotency)
      .middleware(NoRequestBody)
      .annotateMerge(
        OpenApi.annotations({
          summary: "Expunge an event's data",
          description:
            "Erases the event's `data` for good, with the response excerpts of its delivery attempts, and cancels its " +
            "pending deliveries (`lastError` says why); its other members, its deliveries and their attempts stay. " +
            "Answers the event, `data: null` and `expungedAt` set; so does every read of it afterwards. Repeating it " +
            "answers the same, with the first `expungedAt`. A delivery of it can no longer be sent: `retry` answers " +
            "409, `recover` passes it over. A send already in flight when it commits still completes. Operational " +
            "`codex.*` events can be expunged too."
        })
      )
  )
  .middleware(JsonBody)
  .middleware(TenantAuth)
  .prefix("/v1")
  .annotateMerge(OpenApi.annotations({ title: "Events", description: "What happened in your system." })) {}
