import { Layer } from "effect"
import { HttpApiBuilder, HttpApiMiddleware, HttpApiScalar } from "effect/http-api"
import { ApiKeyAuthLive } from "../../layers/ApiKeyAuthLive.ts"
import { EndpointsLive } from "../../layers/EndpointsLive.ts"
import { EventsLive } from "../../layers/EventsLive.ts"
import { TenantsLive } from "../../layers/TenantsLive.ts"
import { UrlPolicyLive } from "../../layers/UrlPolicyLive.ts"
import { Api } from "../api/Api.ts"
import { AdminHttp } from "./AdminHttp.ts"
import { AdminAuthLive, TenantAuthLive } from "./Auth.ts"
import { EdgeMiddleware } from "./EdgeMiddleware.ts"
import { EndpointsHttp } from "./EndpointsHttp.ts"
import { EventsHttp } from "./EventsHttp.ts"
import { SystemHttp } from "./SystemHttp.ts"

/** The handler groups with their middleware implementations (provided to the groups, not beside them). */
const Handlers = Layer.mergeAll(
  SystemHttp,
  AdminHttp.pipe(Layer.provide(AdminAuthLive)),
  EndpointsHttp.pipe(Layer.provide(TenantAuthLive)),
  EventsHttp.pipe(Layer.provide(TenantAuthLive))
).pipe(
  Layer.provide(Layer.mergeAll(TenantsLive, EndpointsLive, EventsLive, UrlPolicyLive)),
  Layer.provide(ApiKeyAuthLive)
)

/** The contract served with its handlers, `/openapi.json`, `/docs` (Scalar) and the edge middleware. */
export const Routes = Layer.mergeAll(
  HttpApiBuilder.layer(Api, { openapiPath: "/openapi.json" }).pipe(
    Layer.provide(Handlers),
    Layer.provide(HttpApiMiddleware.layerProblemDetails({ includeDetails: true }))
  ),
  HttpApiScalar.layer(Api, { path: "/docs" }),
  EdgeMiddleware
)
