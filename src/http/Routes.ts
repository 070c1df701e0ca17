import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { HttpApiBuilder, HttpApiMiddleware, OpenApi } from "effect/http-api"
import { Api, ServedApi } from "../api/Api.ts"
import { PortalRoutes } from "../portal/PortalPage.ts"
import { AdminHttp } from "./AdminHttp.ts"
import { ApiKeysHttp } from "./ApiKeysHttp.ts"
import { AdminAuthLive, TenantAuthLive } from "./Auth.ts"
import { DatabaseAvailabilityLive } from "./DatabaseAvailability.ts"
import { DeliveriesHttp } from "./DeliveriesHttp.ts"
import { DocsRoute } from "./DocsPage.ts"
import { EdgeMiddleware } from "./EdgeMiddleware.ts"
import { EndpointPreflightLive } from "./EndpointPreflight.ts"
import { EndpointsHttp } from "./EndpointsHttp.ts"
import { EventsHttp } from "./EventsHttp.ts"
import { EventTypesHttp } from "./EventTypesHttp.ts"
import { IdempotencyLive } from "./Idempotency.ts"
import { JsonBodyLive } from "./JsonBody.ts"
import { MetricsRoute } from "./MetricsHttp.ts"
import { NoRequestBodyLive } from "./NoRequestBody.ts"
import { AdminPortalSessionsHttp, TenantPortalSessionsHttp } from "./PortalSessionsHttp.ts"
import { RateLimitMiddleware } from "./RateLimit.ts"
import { RouteTemplate } from "./RequestContext.ts"
import { SystemRoutes } from "./SystemHttp.ts"

/**
 * The handler groups with their middleware implementations (provided to the groups, not beside them). The services
 * they call come from src/App.ts.
 */
const Handlers = Layer.mergeAll(
  AdminHttp.pipe(Layer.provide([AdminAuthLive, JsonBodyLive, IdempotencyLive, NoRequestBodyLive])),
  EndpointsHttp.pipe(
    Layer.provide([TenantAuthLive, JsonBodyLive, IdempotencyLive, EndpointPreflightLive, NoRequestBodyLive])
  ),
  EventsHttp.pipe(Layer.provide([TenantAuthLive, JsonBodyLive, IdempotencyLive, NoRequestBodyLive])),
  DeliveriesHttp.pipe(Layer.provide([TenantAuthLive, JsonBodyLive, IdempotencyLive, NoRequestBodyLive])),
  ApiKeysHttp.pipe(Layer.provide([TenantAuthLive, JsonBodyLive, IdempotencyLive])),
  EventTypesHttp.pipe(Layer.provide([TenantAuthLive, JsonBodyLive, IdempotencyLive, NoRequestBodyLive])),
  TenantPortalSessionsHttp.pipe(Layer.provide([TenantAuthLive, JsonBodyLive, IdempotencyLive, NoRequestBodyLive])),
  AdminPortalSessionsHttp.pipe(Layer.provide([AdminAuthLive, JsonBodyLive, IdempotencyLive, NoRequestBodyLive]))
)

/**
 * Global middleware wrap the router in registration order, the first registered outermost. Providing the edge
 * middleware to the rate limiter builds (registers) it first, so the edge finishes the limiter's 429s too.
 */
const Middleware = RateLimitMiddleware.pipe(Layer.provide(EdgeMiddleware))

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
 * the tenant portal (`/portal`, under its own CSP), `/metrics` and the edge middleware. Every route layer gets `RouteTemplate`, so logs and metrics name the matched
 * route's template. It needs the API's services (wired in src/App.ts).
 */
export const Routes = Layer.mergeAll(
  HttpApiBuilder.layer(ServedApi).pipe(
    Layer.provide(Handlers),
    Layer.provide(HttpApiMiddleware.layerProblemDetails({ includeDetails: true })),
    Layer.provide(DatabaseAvailabilityLive),
    Layer.provide(RouteTemplate)
  ),
  SystemRoutes,
  OpenApiRoute,
  DocsRoute,
  PortalRoutes,
  MetricsRoute,
  Middleware
)
