import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { CreateEndpoint, Endpoint, EndpointSecret, UpdateEndpoint } from "../domain/Endpoint.ts"
import { Idempotency } from "./Idempotency.ts"
import { Page, PageQuery } from "./Pagination.ts"
import { NotFound, UnprocessableContent } from "./Problems.ts"
import { TenantAuth } from "./Security.ts"

const idParam = { id: Schema.String }

export class EndpointsApi extends HttpApiGroup.make("endpoints")
  .add(
    HttpApiEndpoint.post("create", "/endpoints", {
      payload: CreateEndpoint,
      success: Endpoint.pipe(HttpApiSchema.status(201)),
      error: UnprocessableContent
    })
      .middleware(Idempotency)
      .annotateMerge(
        OpenApi.annotations({
          summary: "Register a webhook endpoint",
          description: "422 when the URL is not allowed (private network addresses, plain http in production)."
        })
      ),
    HttpApiEndpoint.get("list", "/endpoints", { query: PageQuery, success: Page(Endpoint, "EndpointPage") }),
    HttpApiEndpoint.get("get", "/endpoints/:id", { params: idParam, success: Endpoint, error: NotFound }),
    HttpApiEndpoint.patch("update", "/endpoints/:id", {
      params: idParam,
      payload: UpdateEndpoint,
      success: Endpoint,
      error: [NotFound, UnprocessableContent]
    }).middleware(Idempotency),
    HttpApiEndpoint.delete("delete", "/endpoints/:id", {
      params: idParam,
      success: HttpApiSchema.NoContent,
      error: NotFound
    }),
    HttpApiEndpoint.get("getSecret", "/endpoints/:id/secret", {
      params: idParam,
      success: EndpointSecret,
      error: NotFound
    }).annotateMerge(OpenApi.annotations({ summary: "Read the endpoint's signing secret(s)" })),
    HttpApiEndpoint.post("rotateSecret", "/endpoints/:id/secret/rotate", {
      params: idParam,
      success: EndpointSecret,
      error: NotFound
    })
      .middleware(Idempotency)
      .annotateMerge(
        OpenApi.annotations({
          summary: "Rotate the signing secret",
          description: "The previous secret stays valid for 24 hours: deliveries carry both signatures meanwhile."
        })
      )
  )
  .middleware(TenantAuth)
  .prefix("/v1")
  .annotateMerge(OpenApi.annotations({ title: "Endpoints", description: "Where your events are delivered." })) {}
