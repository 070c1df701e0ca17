import { Context, Effect } from "effect"
import { HttpEffect, HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { AppConfig } from "../../services/AppConfig.ts"
import { Readiness } from "../../services/Readiness.ts"
import { makeCorsPolicy } from "./Cors.ts"
import { databaseUnavailableAs503, ensureProblemBody, logDefects } from "./ProblemResponses.ts"
import { securityHeaders } from "./SecurityHeaders.ts"

/**
 * The one global middleware: it runs for every request, including unknown routes, and its pre-response handler sees
 * every response, including the ones produced from the error channel (decode errors, 404, 413, defects), which
 * code after `yield* httpEffect` would miss. It answers CORS preflights, makes error bodies problem+json, adds the
 * security and CORS headers, and asks clients to close their connection while the server drains.
 */
export const EdgeMiddleware = HttpRouter.middleware(
  Effect.gen(function* () {
    const config = yield* AppConfig
    const readiness = yield* Readiness
    const cors = makeCorsPolicy(config.appEnv, config.corsOrigins)
    const security = securityHeaders(config.appEnv)
    const drainingHeaders = { connection: "close" }

    const finalize = (
      request: HttpServerRequest.HttpServerRequest,
      response: HttpServerResponse.HttpServerResponse
    ): HttpServerResponse.HttpServerResponse => {
      let out = ensureProblemBody(request, response, config.bodyLimitBytes)
      out = HttpServerResponse.setHeaders(out, security)
      const corsHeaders = cors.responseHeaders(request.headers.origin)
      if (corsHeaders !== undefined) out = HttpServerResponse.setHeaders(out, corsHeaders)
      if (readiness.isDraining()) out = HttpServerResponse.setHeaders(out, drainingHeaders)
      return out
    }

    return (httpEffect) =>
      Effect.withFiber((fiber) => {
        const request = Context.getUnsafe(fiber.context, HttpServerRequest.HttpServerRequest)
        if (request.method === "OPTIONS" && request.headers["access-control-request-method"] !== undefined) {
          const headers = { ...security, ...cors.preflightHeaders(request.headers.origin) }
          const preflight = HttpServerResponse.empty({ status: 204, headers })
          return Effect.succeed(
            readiness.isDraining() ? HttpServerResponse.setHeaders(preflight, drainingHeaders) : preflight
          )
        }
        HttpEffect.appendPreResponseHandlerUnsafe(fiber.context, (req, res) => Effect.succeed(finalize(req, res)))
        return logDefects(databaseUnavailableAs503(httpEffect))
      })
  }),
  { global: true }
)
