import { randomUUID } from "node:crypto"
import { IncomingMessage } from "node:http"
import { Context, Effect, LogLevel, Option, Scope, Tracer } from "effect"
import { HttpEffect, HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { AppConfig } from "../../services/AppConfig.ts"
import { LogSink } from "../../services/LogSink.ts"
import { Metrics } from "../../services/Metrics.ts"
import { Readiness } from "../../services/Readiness.ts"
import { type AccessFields, accessLine } from "../domain/AccessLine.ts"
import { compileTrust, formatIp, resolveClientIp } from "../domain/ClientIp.ts"
import { pathOf } from "../domain/RequestPath.ts"
import { resolvedClientAttribute } from "../domain/TraceContext.ts"
import { makeCorsPolicy } from "./Cors.ts"
import { databaseUnavailableAs503 } from "./DatabaseAvailability.ts"
import { makeAllowedMethods, methodNotAllowed } from "./MethodNotAllowed.ts"
import { ensureProblemBody, logDefects } from "./ProblemResponses.ts"
import { acceptedRequestId, CurrentRequestState, type RequestState, unmatchedRoute } from "./RequestContext.ts"
import { releaseRequestLink } from "./RequestScopeLink.ts"
import { securityHeaders } from "./SecurityHeaders.ts"

/** Probes (health checks, scrapes) are logged at debug unless ACCESS_LOG_PROBES is set: they would drown the log. */
const probeRoutes: ReadonlySet<string> = new Set(["/livez", "/readyz", "/healthz", "/metrics"])

/**
 * The request has a body that has not fully arrived: the response comes early (401, 404, 413, 429 ... before the
 * body was read). Node would otherwise keep reading the rest to reuse the connection, at the client's pace: a slow
 * body held its socket until the request timeout, 328 s with Node's defaults (issue 14). With `Connection: close`
 * the adapter (@effect/platform-node) ends the socket once the response is written and destroys it 500 ms later;
 * on its own it does that only when more than 256 KiB of a declared Content-Length remain. Only a request that
 * declares a body can have one to come (`complete` is still false for any request answered synchronously, within
 * Node's "request" event: see `observe`).
 */
const bodyStillArriving = (request: HttpServerRequest.HttpServerRequest): boolean => {
  const source = request.source
  if (!(source instanceof IncomingMessage) || source.complete) return false
  const length = source.headers["content-length"]
  return source.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0")
}

/**
 * The one global middleware: it runs for every request, including unknown routes, and its pre-response handler sees
 * every response, including the ones produced from the error channel (decode errors, 404, 413, defects), which
 * code after `yield* httpEffect` would miss. It answers CORS preflights, makes error bodies problem+json, adds the
 * security and CORS headers, closes the connection while the server drains or when the response comes before the
 * request's body has arrived (so the rest is never read), and observes the request:
 * `X-Request-Id` on the response and on every log line, the access log line, the HTTP metrics, and the server span's
 * name (`GET /v1/events/:id`), its `request.id` attribute and the client TRUST_PROXY resolves.
 */
export const EdgeMiddleware = HttpRouter.middleware(
  Effect.gen(function* () {
    const config = yield* AppConfig
    const readiness = yield* Readiness
    const metrics = config.metricsEnabled ? yield* Metrics : undefined
    const sink = yield* LogSink
    // One Effect for all requests, not one per request.
    const endInFlight = metrics === undefined ? undefined : Effect.sync(metrics.requestEnded)
    const cors = makeCorsPolicy(config.appEnv, config.corsOrigins)
    const security = securityHeaders(config.appEnv)
    // A response that brings its own policy (a page: /docs, /portal) keeps it, and one that may be cached (the
    // portal's versioned files) its Cache-Control: every other response is `no-store`.
    const { "content-security-policy": _apiPolicy, ...securityKeepingPolicy } = security
    const { "cache-control": _noStore, ...securityKeepingCache } = security
    const { "cache-control": _noStoreToo, ...securityKeepingBoth } = securityKeepingPolicy
    const securityFor = (response: HttpServerResponse.HttpServerResponse) => {
      const ownPolicy = response.headers["content-security-policy"] !== undefined
      if (response.headers["cache-control"] === undefined) return ownPolicy ? securityKeepingPolicy : security
      return ownPolicy ? securityKeepingBoth : securityKeepingCache
    }
    const closeConnection = { connection: "close" }
    const probeLevel = config.accessLogProbes ? "Info" : "Debug"
    const orMethodNotAllowed = methodNotAllowed(makeAllowedMethods(config, yield* HttpRouter.RouterConfig))
    // The client as the rate limiter sees it (TRUST_PROXY), not merely the socket peer.
    const trust = compileTrust(config.rateLimit.trustProxy)
    const resolve = (remote: string | undefined, forwardedFor: string | undefined): string | undefined => {
      const ip = resolveClientIp(remote, forwardedFor, trust)
      return ip === undefined ? remote : formatIp(ip)
    }
    // Without a forwarded-for chain to read, the client is a function of the socket address alone: remember it, since
    // parsing and formatting addresses showed in the hot path's profile. Bounded: cleared when it gets large.
    const bySocketAddress = new Map<string, string | undefined>()
    const clientIpOf = (request: HttpServerRequest.HttpServerRequest): string | undefined => {
      const remote = Option.getOrUndefined(request.remoteAddress)
      const forwardedFor = request.headers["x-forwarded-for"]
      if (remote === undefined || (trust._tag !== "None" && forwardedFor !== undefined)) {
        return resolve(remote, forwardedFor)
      }
      if (bySocketAddress.has(remote)) return bySocketAddress.get(remote)
      const client = resolve(remote, undefined)
      if (bySocketAddress.size >= 4096) bySocketAddress.clear()
      bySocketAddress.set(remote, client)
      return client
    }

    const finalize = (
      request: HttpServerRequest.HttpServerRequest,
      response: HttpServerResponse.HttpServerResponse,
      requestId: string
    ): HttpServerResponse.HttpServerResponse => {
      const out = ensureProblemBody(request, response, config.bodyLimitBytes)
      const corsHeaders = cors.responseHeaders(request.headers.origin)
      const closing = readiness.isDraining() || bodyStillArriving(request)
      // One change of the (immutable) headers, not one per group: each change copies them all.
      return HttpServerResponse.setHeaders(out, {
        ...securityFor(out),
        ...corsHeaders,
        ...(closing ? closeConnection : undefined),
        "x-request-id": requestId
      })
    }

    /**
     * The access line: written after the response is known, when the request's own annotations are gone, so every
     * field is explicit. JSON lines go straight to the sink (the per-request cost matters here); the pretty format of
     * development goes through the logger.
     */
    const accessLog = (
      request: HttpServerRequest.HttpServerRequest,
      status: number,
      state: RequestState,
      route: string,
      durationMs: number
    ): Effect.Effect<void> | undefined => {
      const level = status >= 500 ? "Error" : probeRoutes.has(route) ? probeLevel : "Info"
      if (!LogLevel.isGreaterThanOrEqualTo(level, config.logLevel)) return undefined
      const fields: AccessFields = {
        requestId: state.requestId,
        method: request.method,
        route,
        path: pathOf(request.url),
        status,
        durationMs: Math.round(durationMs * 100) / 100,
        tenantId: state.tenantId,
        operator: state.operator ? true : undefined,
        // The server span is no longer the fiber's current span once the response is being written.
        traceId: state.span?.traceId,
        spanId: state.span?.spanId,
        clientIp: clientIpOf(request),
        userAgent: request.headers["user-agent"]
      }
      if (config.logFormat === "json") {
        sink.write(accessLine(level, fields))
        return undefined
      }
      const annotations = Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined))
      return Effect.logWithLevel(level)("request").pipe(Effect.annotateLogs(annotations))
    }

    const observe = (
      request: HttpServerRequest.HttpServerRequest,
      response: HttpServerResponse.HttpServerResponse,
      state: RequestState
    ): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
      // Answered before the body arrived, or before Node parsed the part that has: a response made synchronously
      // inside Node's "request" event precedes the parsing of a body sent in the same packet. One turn of the event
      // loop tells the two apart, so a small complete body keeps its connection. Only requests with a body pay it.
      bodyStillArriving(request)
        ? Effect.andThen(
            Effect.yieldNow,
            Effect.suspend(() => respond(request, response, state))
          )
        : respond(request, response, state)

    const respond = (
      request: HttpServerRequest.HttpServerRequest,
      response: HttpServerResponse.HttpServerResponse,
      state: RequestState
    ): Effect.Effect<HttpServerResponse.HttpServerResponse> => {
      const out = finalize(request, response, state.requestId)
      const durationMs = performance.now() - state.startedAt
      const route = state.route ?? unmatchedRoute
      metrics?.requestFinished(request.method, route, out.status, durationMs / 1000)
      // `{METHOD} {route}`: the route is known only now, after the span started (named by the method alone). Effect's
      // `Span` has no rename (its `name` is readonly in the types, 4.1.0); both its native span and the OTLP span keep
      // the name as a plain field read when the span is exported, so writing it works. Pinned by test/tracing.test.ts
      // (the exported names): an Effect upgrade that stores the name elsewhere fails there, not silently.
      if (state.span !== undefined && state.route !== undefined && state.span.sampled) {
        Reflect.set(state.span, "name", `${request.method} ${state.route}`)
      }
      const logged = config.accessLog ? accessLog(request, out.status, state, route, durationMs) : undefined
      return logged === undefined ? Effect.succeed(out) : Effect.as(logged, out)
    }

    return (httpEffect) =>
      Effect.withFiber((fiber) => {
        const request = Context.getUnsafe(fiber.context, HttpServerRequest.HttpServerRequest)
        const parent = Context.getOrUndefined(fiber.context, Tracer.ParentSpan)
        const span = parent !== undefined && parent._tag === "Span" ? parent : undefined
        const state: RequestState = {
          requestId: acceptedRequestId(request.headers["x-request-id"]) ?? randomUUID(),
          startedAt: performance.now(),
          span,
          route: undefined,
          tenantId: undefined,
          operator: false
        }
        span?.attribute("request.id", state.requestId)
        if (span?.sampled === true) {
          // Behind a trusted proxy the client is not the socket peer: written to client.address on export.
          const client = clientIpOf(request)
          if (client !== undefined && client !== Option.getOrUndefined(request.remoteAddress)) {
            span.attribute(resolvedClientAttribute, client)
          }
        }
        // The request's scope (HttpEffect.toHandled's): its link to the request is dropped once the response is known,
        // or a finished request stays alive until the next full collection (see RequestScopeLink.ts).
        const requestScope = Context.getOrUndefined(fiber.context, Scope.Scope)
        HttpEffect.appendPreResponseHandlerUnsafe(fiber.context, (req, res) => {
          releaseRequestLink(requestScope)
          return observe(req, res, state)
        })

        if (request.method === "OPTIONS" && request.headers["access-control-request-method"] !== undefined) {
          const headers = { ...security, ...cors.preflightHeaders(request.headers.origin) }
          const preflight = HttpServerResponse.empty({ status: 204, headers })
          return Effect.succeed(
            readiness.isDraining() ? HttpServerResponse.setHeaders(preflight, closeConnection) : preflight
          )
        }
        const handled = logDefects(databaseUnavailableAs503(orMethodNotAllowed(request, httpEffect))).pipe(
          Effect.provideService(CurrentRequestState, state),
          Effect.annotateLogs({ requestId: state.requestId })
        )
        if (metrics === undefined || endInFlight === undefined) return handled
        metrics.requestStarted()
        return Effect.ensuring(handled, endInFlight)
      })
  }),
  { global: true }
)
