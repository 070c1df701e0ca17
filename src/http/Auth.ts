import { createHash, timingSafeEqual } from "node:crypto"
import { Effect, Layer, Option, Redacted } from "effect"
import { ApiKeyAuth } from "../../services/ApiKeyAuth.ts"
import { AppConfig } from "../../services/AppConfig.ts"
import { NotFound, Unauthorized } from "../api/Problems.ts"
import { AdminAuth, CurrentTenant, TenantAuth } from "../api/Security.ts"

const unauthorized = new Unauthorized({ detail: "A valid API key is required: Authorization: Bearer ck_..." })

/** Resolves `Authorization: Bearer ck_...` to the tenant; every way of failing is the same 401. */
export const TenantAuthLive: Layer.Layer<TenantAuth, never, ApiKeyAuth> = Layer.effect(
  TenantAuth,
  Effect.gen(function* () {
    const keys = yield* ApiKeyAuth
    return TenantAuth.of({
      bearer: (httpEffect, { credential }) =>
        Effect.gen(function* () {
          const tenant = yield* keys.authenticate(Redacted.value(credential)).pipe(Effect.orDie)
          if (Option.isNone(tenant)) return yield* unauthorized
          return yield* Effect.provideService(httpEffect, CurrentTenant, { id: tenant.value }).pipe(
            Effect.annotateLogs({ tenantId: tenant.value })
          )
        })
    })
  })
)

const digest = (value: string) => createHash("sha256").update(value).digest()

/**
 * Admin access: `Bearer $ADMIN_TOKEN`, compared in constant time (both sides hashed first, so lengths match too).
 * Without a token, the admin API is open in development (for the README walkthrough) and absent (404) elsewhere.
 */
export const AdminAuthLive: Layer.Layer<AdminAuth, never, AppConfig> = Layer.effect(
  AdminAuth,
  Effect.gen(function* () {
    const config = yield* AppConfig
    const expected = Option.map(config.adminToken, (token) => digest(Redacted.value(token)))
    if (Option.isNone(expected) && config.appEnv === "development") {
      yield* Effect.logWarning("ADMIN_TOKEN is unset: the admin API is open (development only)")
    }
    return AdminAuth.of({
      bearer: (httpEffect, { credential }) => {
        if (Option.isNone(expected)) {
          return config.appEnv === "development"
            ? httpEffect
            : Effect.fail(new NotFound({ detail: "No route matches this request." }))
        }
        return timingSafeEqual(digest(Redacted.value(credential)), expected.value)
          ? httpEffect
          : Effect.fail(new Unauthorized({ detail: "A valid admin token is required: Authorization: Bearer ..." }))
      }
    })
  })
)
