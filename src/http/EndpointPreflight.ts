import { type Context, Effect, Layer, Option } from "effect"
import { HttpRouter, HttpServerRequest } from "effect/http"
import { EndpointCircuits } from "../../services/EndpointCircuits.ts"
import { UrlPolicy } from "../../services/UrlPolicy.ts"
import { EndpointPreflight, PreflightedWrite, type UrlVerdict } from "../api/EndpointsApi.ts"
import type { EndpointHealth } from "../domain/Endpoint.ts"

const allowed: UrlVerdict = { _tag: "Allowed" }

/** A new endpoint has no circuit yet: closed, without asking the circuits' store. */
export const freshHealth: EndpointHealth = { circuit: "closed", openUntil: null }

/** The `url` member of a JSON body, when it has a string one (the handler's own decoding judges the rest). */
const urlOf = (body: unknown): string | undefined =>
  typeof body === "object" && body !== null && "url" in body && typeof body.url === "string" ? body.url : undefined

/**
 * EndpointPreflight (see the contract): reads the body (the request caches it, so decoding it again later costs no
 * I/O), runs the SSRF guard on its URL — DNS included — and reads the endpoint's circuit, all before any database
 * connection is taken.
 */
export const EndpointPreflightLive: Layer.Layer<EndpointPreflight, never, UrlPolicy | EndpointCircuits> = Layer.effect(
  EndpointPreflight,
  Effect.gen(function* () {
    const urlPolicy = yield* UrlPolicy
    const circuits = yield* EndpointCircuits
    return EndpointPreflight.of((httpEffect, { endpoint }) =>
      Effect.gen(function* () {
        const request = yield* HttpServerRequest.HttpServerRequest
        // An unreadable or malformed body: the handler's decoding answers it (400, 413, 415).
        const url = urlOf(Option.getOrUndefined(yield* Effect.option(request.json)))
        const verdict =
          url === undefined
            ? allowed
            : yield* urlPolicy.check(url).pipe(
                Effect.match({
                  onSuccess: (): UrlVerdict => allowed,
                  onFailure: (refused): UrlVerdict => ({ _tag: "Refused", reason: refused.reason })
                })
              )
        const route = yield* Effect.serviceOption(HttpRouter.RouteContext)
        const id = Option.isSome(route) ? route.value.params.id : undefined
        const health =
          endpoint.identifier === "update" && id !== undefined
            ? yield* Effect.map(circuits.health(id), (h) => ({
                circuit: h.circuit,
                openUntil: h.openUntil === null ? null : h.openUntil.toISOString()
              }))
            : freshHealth
        return yield* Effect.provideService(httpEffect, PreflightedWrite, { url, verdict, health })
      })
    )
  })
)

/** The URL the handler is about to store must be the one the preflight judged. */
export const assertPreflighted = (
  preflight: Context.Service.Shape<typeof PreflightedWrite>,
  url: string | undefined
) =>
  preflight.url === url
    ? Effect.void
    : Effect.die(new Error("EndpointPreflight judged another URL than the one the handler decoded"))
