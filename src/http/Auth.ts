import { createHash, timingSafeEqual } from "node:crypto"
import { Effect, Layer, Option, Redacted } from "effect"
import { HttpEffect, HttpServerRequest, HttpServerResponse } from "effect/http"
import { ApiKeyAuth } from "../../services/ApiKeyAuth.ts"
import { AppConfig } from "../../services/AppConfig.ts"
import { Forbidden, NotFound, Unauthorized } from "../api/Problems.ts"
import { AdminAuth, CurrentTenant, TenantAuth } from "../api/Security.ts"
import { pathOf } from "../domain/RequestPath.ts"

/**
 * Fails with `error` and adds the challenge every 401 must carry (RFC 9110 §11.6.1). It is the same bare `Bearer`
 * for every failure (no RFC 6750 `error=` code), so the response still does not tell the failures apart.
 */
const challenge = (error: Unauthorized) =>
  HttpEffect.appendPreResponseHandler((_request, response) =>
    Effect.succeed(
      response.status === 401 ? HttpServerResponse.setHeader(response, "www-authenticate", "Bearer") : response
    )
  ).pipe(Effect.andThen(Effect.fail(error)))

const unauthorized = challenge(
  new Unauthorized({ detail: "A valid API key is required: Authorization: Bearer ck_..." })
)

/** What a `read` key may send: requests that change nothing. */
const readMethods: ReadonlySet<string> = new Set(["GET", "HEAD"])

/**
 * Resolves `Authorization: Bearer ck_...` to the tenant; every way of failing is the same 401. A `read` key's write
 * is a 403 before anything else runs (no Idempotency-Key claimed, no body read).
 */
export const TenantAuthLive: Layer.Layer<TenantAuth, never, ApiKeyAuth> = Layer.effect(
  TenantAuth,
  Effect.gen(function* () {
    const keys = yield* ApiKeyAuth
    return TenantAuth.of({
      bearer: (httpEffect, { credential }) =>
        Effect.gen(function* () {
          const owner = yield* keys.authenticate(Redacted.value(credential))
          if (Option.isNone(owner)) return yield* unauthorized
          const { tenantId, keyId, scope, catalogInUse } = owner.value
          const request = yield* HttpServerRequest.HttpServerRequest
          if (scope === "read" && !readMethods.has(request.method)) {
            return yield* new Forbidden({
              detail: `This API key has the \`read\` scope: it may only send GET and HEAD requests, not ${request.method}.`
            })
          }
          return yield* Effect.provideService(httpEffect, CurrentTenant, {
            id: tenantId,
            keyId,
            scope,
            catalogInUse
          }).pipe(Effect.annotateLogs({ tenantId }))
        })
    })
  })
)

const adminUnauthorized = challenge(
  new Unauthorized({ detail: "A valid admin token is required: Authorization: Bearer ..." })
)

const digest = (value: string) => createHash("sha256").update(value).digest()

/**
 * The 404 of a route that does not exist, word for word (see ProblemResponses' `detailFor`): a disabled admin API
 * must not be told apart from an absent one.
 */
const noSuchRoute = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  return yield* new NotFound({ detail: `No route matches ${request.method} ${pathOf(request.url)}.` })
})

/**
 * Admin access: `Bearer $ADMIN_TOKEN`, compared in constant time (both sides hashed first, so lengths match too).
 * Without a token, the admin API is open in development (for the README walkthrough) and absent (404) elsewhere.
 */
export const AdminAuthLive: Layer.Layer<AdminAuth, never, AppConfig> = Layer.effect(
  AdminAuth,
  Effect.gen(function* () {
    const config = yield* AppConfig
    const expected = Option.map(config.adminToken, (token) => digest(Redacted.value(token)))
    if (Option.isNone(expected)) {
      yield* config.appEnv === "development"
        ? Effect.logWarning("ADMIN_TOKEN is unset: the admin API is open (development only)")
        : Effect.logInfo("ADMIN_TOKEN is unset: the admin API is off (every /admin route answers 404)")
    }
    return AdminAuth.of({
      bearer: (httpEffect, { credential }) => {
        if (Option.isNone(expected)) {
          return config.appEnv === "development" ? httpEffect : noSuchRoute
        }
        return timingSafeEqual(digest(Redacted.value(credential)), expected.value) ? httpEffect : adminUnauthorized
      }
    })
  })
)
