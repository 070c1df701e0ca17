import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { HttpApiBuilder, HttpApiMiddleware, OpenApi } from "effect/http-api"
import { ApiKeyAuthLive } from "../../layers/ApiKeyAuthLive.ts"
import { DeliveriesLive } from "../../layers/DeliveriesLive.ts"
import { EndpointsLive } from "../../layers/EndpointsLive.ts"
import { EventsLive } from "../../layers/EventsLive.ts"
import { IdempotencyStoreLive } from "../../layers/IdempotencyStoreLive.ts"
import { RateLimitLive } from "../../layers/RateLimitLive.ts"
import { TenantsLive } from "../../layers/TenantsLive.ts"
import { Api, ServedApi } from "../api/Api.ts"
import { AdminHttp } from "./AdminHttp.ts"
import { AdminAuthLive, TenantAuthLive } from "./Auth.ts"
import { DeliveriesHttp } from "./DeliveriesHttp.ts"
import { DocsRoute } from "./DocsPage.ts"
import { EdgeMiddleware } from "./EdgeMiddleware.ts"
import { EndpointPreflightLive } from "./EndpointPreflight.ts"
import { EndpointsHttp } from "./EndpointsHttp.ts"
import { EventsHttp } from "./EventsHttp.ts"
import { IdempotencyLive } from "./Idempotency.ts"
import { JsonBodyLive } from "./JsonBody.ts"
import { MetricsRoute } from "./MetricsHttp.ts"
import { NoRequestBodyLive } from "./NoRequestBody.ts"
import { RateLimitMiddleware } from "./RateLimit.ts"
import { ApiKeyAuthObserved, RouteTemplate } from "./RequestContext.ts"
import { SystemRoutes } from "./SystemHttp.ts"

/** One API key cache for the rate limiter and TenantAuth: the limiter's lookup is the one TenantAuth reuses. */
const ApiKeys = ApiKeyAuthObserved.pipe(Layer.provide(ApiKeyAuthLive))

/**
 * The handler groups with their middleware implementations (provided to the groups, not beside them). The URL policy
 * comes from the server, which shares it with the delivery worker.
 */
const Handlers = Layer.mergeAll(
  AdminHttp.pipe(Layer.provide([AdminAuthLive, JsonBodyLive, IdempotencyLive, NoRequestBodyLive])),
  EndpointsHttp.pipe(
    Layer.provide([TenantAuthLive, JsonBodyLive, IdempotencyLive, EndpointPreflightLive, NoRequestBodyLive])
  ),
  EventsHttp.pipe(Layer.provide([TenantAuthLive, JsonBodyLive, IdempotencyLive])),
  DeliveriesHttp.pipe(Layer.provide([TenantAuthLive, JsonBodyLive, IdempotencyLive, NoRequestBodyLive]))
).pipe(
  Layer.provide(Layer.mergeAll(TenantsLive, EndpointsLive, EventsLive, DeliveriesLive, IdempotencyStoreLive)),
  Layer.provide(ApiKeys)
)

/**
 * Global middleware wrap the router in registration order, the first registered outermost. Providing the edge
 * middleware to the rate limiter builds (registers) it first, so the edge finishes the limiter's 429s too.
 */
const Middleware = RateLimitMiddleware.pipe(Layer.provide(EdgeMiddleware), Layer.provide([RateLimitLive, ApiKeys]))

/** `GET /openapi.json`: the whole contract, probes included; rendered on the first request, then kept. */
const OpenApiRoute = Layer.suspend(() => {
  let document: HttpServerResponse.HttpServerResponse | undefined
  return HttpRouter.add(
    "GET",
    "/openapi.json",
    Effect.sync(() => (document ??= HttpServerResponse.jsonUnsafe(OpenApi.fromApi(Api))))
  ).pipe(Layer.provide(RouteTemplate))
})

/**
 * The contract served: its groups with their handlers, the probes, `/openapi.json`, `/docs` (Scalar, under its own CSP),
 * `/metrics` and
 * the edge middleware. Every route layer gets `RouteTemplate`, so logs and metrics name the matched route's template.
 */
export const Routes = Layer.mergeAll(
  HttpApiBuilder.layer(ServedApi).pipe(
    Layer.provide(Handlers),
    Layer.provide(HttpApiMiddleware.layerProblemDetails({ includeDetails: true })),
    Layer.provide(RouteTemplate)
  ),
  SystemRoutes,
  OpenApiRoute,
  DocsRoute,
  MetricsRoute,
  Middleware
)
