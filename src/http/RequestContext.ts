import type { Option, Tracer } from "effect"
import { Context, Effect, Layer } from "effect"
import { HttpRouter } from "effect/http"
import { ApiKeyAuth, type TenantAccess } from "../../services/ApiKeyAuth.ts"

/**
 * What the edge middleware learns about a request while it is handled, for the access log, the metrics and the span
 * once the response is known. Created by the edge middleware for every request (before routing); the route template
 * is filled in by `RouteTemplate` once a route matched, the tenant by `ApiKeyAuthObserved` once a key resolved.
 */
export interface RequestState {
  readonly requestId: string
  /** `performance.now()` when the request reached the application. */
  readonly startedAt: number
  /** The server span, when tracing is on. */
  readonly span: Tracer.Span | undefined
  /** The matched route's template (`/v1/events/:id`); undefined = no route matched. */
  route: string | undefined
  tenantId: string | undefined
  /** The admin token acting as `tenantId` (`Codex-Tenant`): the access line says so. */
  operator: boolean
}

export class CurrentRequestState extends Context.Service<CurrentRequestState, RequestState>()(
  "codex/CurrentRequestState"
) {}

/** Label and log value for requests no route matched (raw paths never become labels). */
export const unmatchedRoute = "unmatched"

const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/

/** An incoming `X-Request-Id` is kept when it is 1..128 characters of `[A-Za-z0-9._:-]`; otherwise a new one is made. */
export const acceptedRequestId = (header: string | undefined): string | undefined =>
  header !== undefined && requestIdPattern.test(header) ? header : undefined

/**
 * Route-level middleware recording the matched route's template: the router's `RouteContext` exists only inside the
 * matched route, never in the global middleware's pre-response handler, so it is carried out through the request
 * state. Provided to every route layer (API, docs, /metrics).
 */
export const RouteTemplate = HttpRouter.middleware((httpEffect) =>
  Effect.withFiber((fiber) => {
    const state = Context.getOrUndefined(fiber.context, CurrentRequestState)
    const route = Context.getOrUndefined(fiber.context, HttpRouter.RouteContext)
    if (state !== undefined && route !== undefined) state.route = route.route.path
    return httpEffect
  })
).layer

/**
 * The API key lookup, also noting the tenant on the request state (and whether an operator acts as it), so the access
 * line of an authenticated request carries `tenantId` (and `operator: true`) (the annotation TenantAuth puts on log lines is scoped to the handler, and the access line is
 * written after it).
 */
export const ApiKeyAuthObserved: Layer.Layer<ApiKeyAuth, never, ApiKeyAuth> = Layer.effect(
  ApiKeyAuth,
  Effect.gen(function* () {
    const inner = yield* ApiKeyAuth
    const observe = (operator: boolean) => (access: Option.Option<TenantAccess>) =>
      Effect.withFiber<void>((fiber) => {
        const state = Context.getOrUndefined(fiber.context, CurrentRequestState)
        if (state !== undefined && access._tag === "Some") {
          state.tenantId = access.value.tenantId
          state.operator = operator
        }
        return Effect.void
      })
    const observed = observe(false)
    return ApiKeyAuth.of({
      authenticate: (key) => Effect.tap(inner.authenticate(key), observed),
      authenticateIfKnown: (key) => Effect.tap(inner.authenticateIfKnown(key), observed),
      invalidateTenant: inner.invalidateTenant,
      operatorTenant: (tenantId) => Effect.tap(inner.operatorTenant(tenantId), observe(true)),
      changes: inner.changes
    })
  })
)
