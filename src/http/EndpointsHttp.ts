import { Clock, Effect, Schema } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { EndpointStats } from "../../services/EndpointStats.ts"
import { Endpoints } from "../../services/Endpoints.ts"
import { EventTypes } from "../../services/EventTypes.ts"
import { Api } from "../api/Api.ts"
import { PreflightedWrite, type UrlVerdict } from "../api/EndpointsApi.ts"
import { BadRequest, UnprocessableContent } from "../api/Problems.ts"
import { CurrentTenant } from "../api/Security.ts"
import { headersProblem } from "../domain/EndpointHeaders.ts"
import { statsWindow } from "../domain/EndpointStats.ts"
import { compileFilter } from "../domain/EventFilter.ts"
import { unmatchedPattern } from "../domain/EventTypeCatalog.ts"
import { EndpointId, type TenantId } from "../domain/Ids.ts"
import { pageRequest, pageResponse } from "./Cursor.ts"
import { assertPreflighted } from "./EndpointPreflight.ts"
import { notFound, orNotFound, pathId } from "./Params.ts"

const endpointId = pathId(EndpointId, "endpoint")

export const EndpointsHttp = HttpApiBuilder.group(
  Api,
  "endpoints",
  Effect.fn(function* (handlers) {
    const endpoints = yield* Endpoints
    const stats = yield* EndpointStats
    const catalog = yield* EventTypes
    /**
     * In strict mode (the tenant's `strictEventTypes`), each entry of `eventTypes` must name a catalog type (not
     * archived) or an operational one, or be a `prefix.*` matching at least one: the 422 names the first that does
     * not. An empty filter (every event) is allowed: in strict mode every published type is in the catalog anyway.
     */
    const subscribable = (tenantId: TenantId, eventTypes: ReadonlyArray<string> | undefined) =>
      Effect.gen(function* () {
        if (eventTypes === undefined || eventTypes.length === 0) return
        const { strict, names } = yield* catalog.subscriptions(tenantId)
        if (!strict) return
        const unmatched = unmatchedPattern(eventTypes, names)
        if (unmatched === undefined) return
        const index = eventTypes.indexOf(unmatched)
        return yield* new UnprocessableContent({
          detail:
            `"${unmatched}" names no type of your event-type catalog, and strict mode subscribes only to catalog ` +
            "types (or prefixes matching one).",
          errors: [{ pointer: `/eventTypes/${index}`, message: "matches no catalog type" }]
        })
      })
    /**
     * The URL was judged by EndpointPreflight, before any connection was taken: nothing here waits on the network, so
     * it may all run inside the Idempotency middleware's transaction.
     */
    const allowedUrl = (verdict: UrlVerdict) =>
      verdict._tag === "Allowed"
        ? Effect.void
        : Effect.fail(new UnprocessableContent({ detail: `The endpoint URL is not allowed: ${verdict.reason}.` }))
    /** A payload filter that compiles (EventFilter): the 422 names the path of the first mistake. */
    const allowedFilter = (filter: unknown) => {
      if (filter === undefined || filter === null) return Effect.void
      const compiled = compileFilter(filter)
      return compiled._tag === "Compiled"
        ? Effect.void
        : Effect.fail(
            new UnprocessableContent({
              detail: `The endpoint's filter is not valid at ${compiled.problem.path}: ${compiled.problem.message}.`
            })
          )
    }
    /** Custom headers HTTP and codex-api allow (EndpointHeaders): the first that is not is named in the 422. */
    const allowedHeaders = (headers: Readonly<Record<string, string>> | undefined) => {
      const problem = headers === undefined ? undefined : headersProblem(headers)
      return problem === undefined
        ? Effect.void
        : Effect.fail(new UnprocessableContent({ detail: `The endpoint's headers are not allowed: ${problem}.` }))
    }

    return handlers
      .handle("create", ({ payload }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const preflight = yield* PreflightedWrite
          yield* assertPreflighted(preflight, payload.url)
          yield* allowedUrl(preflight.verdict)
          yield* allowedHeaders(payload.headers)
          yield* allowedFilter(payload.filter)
          yield* subscribable(tenant.id, payload.eventTypes)
          return yield* endpoints.create(tenant.id, payload)
        })
      )
      .handle("list", ({ query }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const list = { name: "endpoints", owner: tenant.id, isId: Schema.is(EndpointId) }
          const page = yield* endpoints.list(tenant.id, yield* pageRequest(list, query))
          return pageResponse(list)(page)
        })
      )
      .handle("get", ({ params }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const id = yield* endpointId(params.id)
          return yield* endpoints.get(tenant.id, id).pipe(orNotFound("endpoint"))
        })
      )
      .handle("update", ({ params, payload }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const id = yield* endpointId(params.id)
          const preflight = yield* PreflightedWrite
          yield* assertPreflighted(preflight, payload.url)
          yield* allowedUrl(preflight.verdict)
          yield* allowedHeaders(payload.headers)
          yield* allowedFilter(payload.filter)
          yield* subscribable(tenant.id, payload.eventTypes)
          const updated = yield* endpoints.update(tenant.id, id, payload).pipe(orNotFound("endpoint"))
          return { ...updated, health: preflight.health }
        })
      )
      .handle("delete", ({ params }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const id = yield* endpointId(params.id)
          const deleted = yield* endpoints.delete(tenant.id, id)
          if (!deleted) return yield* notFound("endpoint")
        })
      )
      .handle("stats", ({ params, query }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const id = yield* endpointId(params.id)
          const window = statsWindow(query.since, new Date(yield* Clock.currentTimeMillis))
          if (window === undefined) {
            return yield* new BadRequest({ detail: "`since` is in the future: stats cover attempts already made." })
          }
          return yield* stats.read(tenant.id, id, window).pipe(orNotFound("endpoint"))
        })
      )
      .handle("getSecret", ({ params }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const id = yield* endpointId(params.id)
          return yield* endpoints.getSecret(tenant.id, id).pipe(orNotFound("endpoint"))
        })
      )
      .handle("rotateSecret", ({ params }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const id = yield* endpointId(params.id)
          return yield* endpoints.rotateSecret(tenant.id, id).pipe(orNotFound("endpoint"))
        })
      )
  })
)
