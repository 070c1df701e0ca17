import { Layer } from "effect"
import { HttpApiBuilder, HttpApiMiddleware, HttpApiScalar } from "effect/http-api"
import { Api } from "../api/Api.ts"
import { EdgeMiddleware } from "./EdgeMiddleware.ts"
import { SystemHttp } from "./SystemHttp.ts"

/** The contract served with its handlers, `/openapi.json`, `/docs` (Scalar) and the edge middleware. */
export const Routes = Layer.mergeAll(
  HttpApiBuilder.layer(Api, { openapiPath: "/openapi.json" }).pipe(
    Layer.provide(SystemHttp),
    Layer.provide(HttpApiMiddleware.layerProblemDetails({ includeDetails: true }))
  ),
  HttpApiScalar.layer(Api, { path: "/docs" }),
  EdgeMiddleware
)
