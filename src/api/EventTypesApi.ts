import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { CatalogEventType, CreateEventType, UpdateEventType } from "../domain/EventTypeCatalog.ts"
import { Idempotency } from "./Idempotency.ts"
import { JsonBody } from "./JsonBody.ts"
import { NoRequestBody } from "./NoRequestBody.ts"
import { Page, PageQuery } from "./Pagination.ts"
import { BadRequest, Conflict, NotFound, UnprocessableContent } from "./Problems.ts"
import { TenantAuth } from "./Security.ts"

const nameParam = { name: Schema.String }

export class EventTypesApi extends HttpApiGroup.make("eventTypes")
  .add(
    HttpApiEndpoint.get("document", "/event-types/openapi.json", {
      success: Schema.Record(Schema.String, Schema.Json).annotate({ identifier: "WebhooksDocument" })
    }).annotateMerge(
      OpenApi.annotations({
        summary: "The catalog as an OpenAPI 3.1 document for receivers",
        description:
          "One `webhooks` operation per catalog type (archived ones left out) and per operational `codex.*` type: " +
          "the request a receiver gets, `{ type, timestamp, data }`, with `data` described by the type's schema, and " +
          "its examples. Generate receiver types from it (`npx openapi-typescript <url>`)."
      })
    ),
    HttpApiEndpoint.post("create", "/event-types", {
      payload: CreateEventType,
      success: CatalogEventType.pipe(HttpApiSchema.status(201)),
      error: [UnprocessableContent, Conflict]
    })
      .middleware(Idempotency)
      .annotateMerge(
        OpenApi.annotations({
          summary: "Add an event type to your catalog",
          description:
            "`schema` must compile as a JSON Schema (draft 2020-12) and every example must match it: 422 otherwise, " +
            "with the failing JSON pointers in `errors`. 409 when the name is taken. Names starting with `codex.` " +
            "and the names `openapi.json`, `.` and `..` are reserved (422)."
        })
      ),
    HttpApiEndpoint.get("list", "/event-types", {
      query: PageQuery,
      success: Page(CatalogEventType, "EventTypePage"),
      error: BadRequest
    }).annotateMerge(OpenApi.annotations({ summary: "List your catalog's event types, newest first" })),
    HttpApiEndpoint.get("get", "/event-types/:name", {
      params: nameParam,
      success: CatalogEventType,
      error: NotFound
    }).annotateMerge(OpenApi.annotations({ summary: "Get an event type" })),
    HttpApiEndpoint.patch("update", "/event-types/:name", {
      params: nameParam,
      payload: UpdateEventType,
      success: CatalogEventType,
      error: [NotFound, UnprocessableContent]
    })
      .middleware(Idempotency)
      .annotateMerge(
        OpenApi.annotations({
          summary: "Change an event type",
          description:
            "Absent members stay; `schema: null` removes the schema. The schema and the examples as they will be " +
            "must agree (422). `deprecated: true` keeps accepting the type, answering publishes with a `Deprecation` " +
            "header; `archived: true` refuses it (422)."
        })
      ),
    HttpApiEndpoint.delete("delete", "/event-types/:name", {
      params: nameParam,
      success: HttpApiSchema.NoContent,
      error: NotFound
    })
      .middleware(NoRequestBody)
      .annotateMerge(
        OpenApi.annotations({
          summary: "Remove an event type from the catalog",
          description: "Events already published stay. In strict mode the type can no longer be published."
        })
      )
  )
  .middleware(JsonBody)
  .middleware(TenantAuth)
  .prefix("/v1")
  .annotateMerge(
    OpenApi.annotations({
      title: "Event types",
      description:
        "Your catalog of event types: a JSON Schema for each type's `data`, checked on publish, and an OpenAPI " +
        "document of your webhooks for receivers."
    })
  ) {}
