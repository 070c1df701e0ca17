import { Effect, Option } from "effect"
import { HttpServerError, HttpServerResponse, ProblemDetails } from "effect/http"
import * as FindMyWay from "effect/http/FindMyWay"
import type { HttpServerRequest } from "effect/http/HttpServerRequest"
import { HttpApi } from "effect/http-api"
import type { AppConfigShape } from "../../services/AppConfig.ts"
import { Api } from "../api/Api.ts"
import { pathOf } from "../domain/RequestPath.ts"

/** RFC 9110 §9: the order methods are listed in an `Allow` header. */
const methodOrder = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

/**
 * Which methods each path of the contract (and the few plain routes beside it) answers, read with a router of the
 * same kind and configuration as the one that serves them, so a path reads the same here as there, whatever its
 * spelling. HEAD is allowed wherever GET is (the router answers HEAD with the GET route).
 */
export const makeAllowedMethods = (config: AppConfigShape, routerConfig: Partial<FindMyWay.RouterConfig>) => {
  const methods = new Map<string, Set<string>>()
  const allow = (method: string, path: string) => {
    const set = methods.get(path) ?? new Set<string>()
    set.add(method)
    if (method === "GET") set.add("HEAD")
    methods.set(path, set)
  }
  HttpApi.reflect(Api, { onGroup: () => {}, onEndpoint: ({ endpoint }) => allow(endpoint.method, endpoint.path) })
  allow("GET", "/openapi.json")
  allow("GET", "/docs")
  allow("GET", "/portal")
  allow("GET", "/portal/assets/:version/:file")
  if (config.metricsEnabled && Option.isNone(config.metricsPort)) allow("GET", "/metrics")
  const router = FindMyWay.make<string>(routerConfig)
  for (const path of methods.keys()) router.all(path as FindMyWay.PathInput, path)
  return (url: string): ReadonlyArray<string> | undefined => {
    const template = router.find("GET", url)?.handler
    const allowed = template === undefined ? undefined : methods.get(template)
    return allowed === undefined ? undefined : methodOrder.filter((method) => allowed.has(method))
  }
}

const isRouteNotFound = (error: unknown): boolean =>
  HttpServerError.isHttpServerError(error) && error.reason._tag === "RouteNotFound"

/**
 * A known path asked with a method it does not answer: `405 Method Not Allowed` with the `Allow` header (RFC 9110
 * §15.5.6) instead of the router's 404, so a client learns its mistake is the method, not the path.
 */
export const methodNotAllowed =
  (allowedMethods: (url: string) => ReadonlyArray<string> | undefined) =>
  <E, R>(
    request: HttpServerRequest,
    self: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
  ): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R> =>
    Effect.catchIf(self, isRouteNotFound, (error) => {
      const allowed = allowedMethods(request.url)
      if (allowed === undefined || allowed.includes(request.method)) return Effect.fail(error)
      return Effect.succeed(
        HttpServerResponse.jsonUnsafe(
          {
            type: ProblemDetails.blankType,
            title: "Method Not Allowed",
            status: 405,
            detail: `${request.method} is not allowed on ${pathOf(request.url)}; allowed: ${allowed.join(", ")}.`
          },
          { status: 405, contentType: ProblemDetails.contentType, headers: { allow: allowed.join(", ") } }
        )
      )
    })
