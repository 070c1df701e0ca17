import { Effect, Layer, Option, Redacted } from "effect"
import { HttpEffect, HttpServerRequest, HttpServerResponse } from "effect/http"
import { ApiKeyAuth } from "../../services/ApiKeyAuth.ts"
import { AppConfig } from "../../services/AppConfig.ts"
import { Forbidden, NotFound, Unauthorized } from "../api/Problems.ts"
import { AdminAuth, CurrentTenant, TenantAuth } from "../api/Security.ts"
import { isPortalToken } from "../domain/PortalSession.ts"
import { pathOf } from "../domain/RequestPath.ts"
import { makeAdminTokenCheck, tenantHeader } from "./AdminToken.ts"

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
 * The groups a portal session may not call, whatever its scope: a tenant's people in the portal manage webhooks, not
 * the tenant's credentials (no API keys, and no session minting another one).
 */
const closedToPortalSessions: ReadonlySet<string> = new Set(["apiKeys", "portalSessions"])

const portalSessionRefused = new Forbidden({
  detail: "A portal session may not manage API keys or portal sessions: use an API key of the tenant."
})

const operatorWithoutTenant = challenge(
  new Unauthorized({
    detail: "The admin token acts on /v1 only as a tenant: name it with a `Codex-Tenant: ten_...` header."
  })
)

/**
 * Resolves `Authorization: Bearer ck_...` to the tenant; every way of failing is the same 401. A `read` key's write
 * is a 403 before anything else runs (no Idempotency-Key claimed, no body read). The admin token with `Codex-Tenant:
 * ten_...` acts as that tenant with a full key's rights (an operator: the access line says so); without the header
 * it stays refused (401), and an unknown or deleting tenant is a 404. A tenant's key naming another tenant there is
 * a 403.
 */
export const TenantAuthLive: Layer.Layer<TenantAuth, never, ApiKeyAuth | AppConfig> = Layer.effect(
  TenantAuth,
  Effect.gen(function* () {
    const keys = yield* ApiKeyAuth
    const isAdminToken = makeAdminTokenCheck(yield* AppConfig)
    const asOperator = (httpEffect: Parameters<TenantAuth["Service"]["bearer"]>[0], tenant: string | undefined) =>
      Effect.gen(function* () {
        if (tenant === undefined || tenant === "") return yield* operatorWithoutTenant
        const access = yield* keys.operatorTenant(tenant)
        if (Option.isNone(access)) {
          return yield* new NotFound({ detail: `No tenant matches the Codex-Tenant header (${tenant.slice(0, 64)}).` })
        }
        const { tenantId, catalogInUse } = access.value
        return yield* Effect.provideService(httpEffect, CurrentTenant, {
          id: tenantId,
          actor: { _tag: "Operator" },
          scope: "full",
          catalogInUse
        }).pipe(Effect.annotateLogs({ tenantId, operator: true }))
      })
    return TenantAuth.of({
      bearer: (httpEffect, { credential: bearer, group }) =>
        Effect.gen(function* () {
          const request = yield* HttpServerRequest.HttpServerRequest
          const tenant = request.headers[tenantHeader]
          if (isAdminToken(Redacted.value(bearer))) return yield* asOperator(httpEffect, tenant)
          const owner = yield* keys.authenticate(Redacted.value(bearer))
          if (Option.isNone(owner)) return yield* unauthorized
          const { tenantId, credential, scope, catalogInUse } = owner.value
          if (credential._tag === "PortalSession" && closedToPortalSessions.has(group.identifier)) {
            return yield* portalSessionRefused
          }
          if (tenant !== undefined && tenant !== "" && tenant !== tenantId) {
            return yield* new Forbidden({
              detail: "Only the admin token may act as another tenant (Codex-Tenant); this API key is its tenant's own."
            })
          }
          if (scope === "read" && !readMethods.has(request.method)) {
            return yield* new Forbidden({
              detail: `This API key has the \`read\` scope: it may only send GET and HEAD requests, not ${request.method}.`
            })
          }
          return yield* Effect.provideService(httpEffect, CurrentTenant, {
            id: tenantId,
            actor: credential,
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

/**
 * The 404 of a route that does not exist, word for word (see ProblemResponses' `detailFor`): a disabled admin API
 * must not be told apart from an absent one.
 */
const noSuchRoute = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  return yield* new NotFound({ detail: `No route matches ${request.method} ${pathOf(request.url)}.` })
})

/** A portal session's token on `/admin`: refused by name, even while development leaves the admin API open. */
const portalSessionOnAdmin = new Forbidden({ detail: "A portal session cannot call the admin API." })

/**
 * Admin access: `Bearer $ADMIN_TOKEN`, compared in constant time (both sides hashed first, so lengths match too).
 * Without a token, the admin API is open in development (for the README walkthrough) and absent (404) elsewhere.
 */
export const AdminAuthLive: Layer.Layer<AdminAuth, never, AppConfig> = Layer.effect(
  AdminAuth,
  Effect.gen(function* () {
    const config = yield* AppConfig
    const isAdminToken = makeAdminTokenCheck(config)
    if (Option.isNone(config.adminToken)) {
      yield* config.appEnv === "development"
        ? Effect.logWarning("ADMIN_TOKEN is unset: the admin API is open (development only)")
        : Effect.logInfo("ADMIN_TOKEN is unset: the admin API is off (every /admin route answers 404)")
    }
    return AdminAuth.of({
      bearer: (httpEffect, { credential }) => {
        if (Option.isNone(config.adminToken) && config.appEnv !== "development") return noSuchRoute
        if (isPortalToken(Redacted.value(credential))) return Effect.fail(portalSessionOnAdmin)
        if (Option.isNone(config.adminToken)) return httpEffect
        return isAdminToken(Redacted.value(credential)) ? httpEffect : adminUnauthorized
      }
    })
  })
)
