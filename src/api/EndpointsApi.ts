import { Context, Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware, HttpApiSchema, OpenApi } from "effect/http-api"
import { CreateEndpoint, Endpoint, type EndpointHealth, EndpointSecret, UpdateEndpoint } from "../domain/Endpoint.ts"
import { EndpointStats, StatsSince } from "../domain/EndpointStats.ts"
import { Idempotency } from "./Idempotency.ts"
import { JsonBody } from "./JsonBody.ts"
import { NoRequestBody } from "./NoRequestBody.ts"
import { Page, PageQuery } from "./Pagination.ts"
import { BadRequest, NotFound, UnprocessableContent } from "./Problems.ts"
import { TenantAuth } from "./Security.ts"

const idParam = { id: Schema.String }

/** The SSRF guard's verdict on a URL, reached before the write (see EndpointPreflight). */
export type UrlVerdict = { readonly _tag: "Allowed" } | { readonly _tag: "Refused"; readonly reason: string }

/**
 * What EndpointPreflight found out before the write: the guard's verdict on the body's `url` (undefined when the body
 * names none), and the circuit health the answer shows. The create and update handlers yield it, so neither can run
 * without its network work having been done first.
 */
export class PreflightedWrite extends Context.Service<
  PreflightedWrite,
  {
    readonly url: string | undefined
    readonly verdict: UrlVerdict
    readonly health: EndpointHealth
  }
>()("codex/PreflightedWrite") {}

/**
 * The network waits of an endpoint write — the URL's DNS answers for the SSRF guard (up to 5 s), the circuit's state in
 * Redis for the answer — run here, BEFORE the Idempotency middleware claims the key and opens the transaction that
 * holds a pooled connection: a host whose DNS never answers must not hold the pool. It answers nothing itself: the
 * handler turns a refusal into the 422, inside the idempotent request, so a refusal is stored and replayed like before.
 */
export class EndpointPreflight extends HttpApiMiddleware.Service<EndpointPreflight, { provides: PreflightedWrite }>()(
  "codex/EndpointPreflight"
) {}

export class EndpointsApi extends HttpApiGroup.make("endpoints")
  .add(
    HttpApiEndpoint.post("create", "/endpoints", {
      payload: CreateEndpoint,
      success: Endpoint.pipe(HttpApiSchema.status(201)),
      error: UnprocessableContent
    })
      .middleware(Idempotency)
      .middleware(EndpointPreflight)
      .annotateMerge(
        OpenApi.annotations({
          summary: "Register a webhook endpoint",
          description: "422 when the URL is not allowed (private network addresses, plain http in production)."
        })
      ),
    HttpApiEndpoint.get("list", "/endpoints", {
      query: PageQuery,
      success: Page(Endpoint, "EndpointPage"),
      error: BadRequest
    }),
    HttpApiEndpoint.get("get", "/endpoints/:id", { params: idParam, success: Endpoint, error: NotFound }),
    HttpApiEndpoint.patch("update", "/endpoints/:id", {
      params: idParam,
      payload: UpdateEndpoint,
      success: Endpoint,
      error: [NotFound, UnprocessableContent]
    })
      .middleware(Idempotency)
      .middleware(EndpointPreflight),
    HttpApiEndpoint.delete("delete", "/endpoints/:id", {
      params: idParam,
      success: HttpApiSchema.NoContent,
      error: NotFound
    }).annotateMerge(
      OpenApi.annotations({
        summary: "Delete an endpoint",
        description:
          "The endpoint disappears from every endpoint read (404, also for a second DELETE) and receives no more " +
          "events; its signing secrets are erased and its pending deliveries cancelled. Its deliveries and their " +
          "attempts stay readable under their events, marked `endpointDeleted: true`. A send in flight finishes and " +
          "its attempt is recorded; the delivery stays cancelled."
      })
    ),
    HttpApiEndpoint.get("stats", "/endpoints/:id/stats", {
      params: idParam,
      query: { since: Schema.optional(StatsSince) },
      success: EndpointStats,
      error: [NotFound, BadRequest]
    }).annotateMerge(
      OpenApi.annotations({
        summary: "How the endpoint's deliveries went",
        description:
          "Its attempts started since `since` (default: the last 24 hours) by outcome, their success rate and p50/p99 " +
          "duration; the times of its latest success and failure ever; and its circuit now. 400 for a `since` that is " +
          "not a date-time or is in the future; 404 for a deleted endpoint, as every read of it."
      })
    ),
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
      .middleware(NoRequestBody)
      .annotateMerge(
        OpenApi.annotations({
          summary: "Rotate the signing secret",
          description: "The previous secret stays valid for 24 hours: deliveries carry both signatures meanwhile."
        })
      )
  )
  .middleware(JsonBody)
  .middleware(TenantAuth)
  .prefix("/v1")
  .annotateMerge(OpenApi.annotations({ title: "Endpoints", description: "Where your events are delivered." })) {}
