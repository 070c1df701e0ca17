import { Context } from "effect"
import { HttpApiMiddleware, HttpApiSecurity } from "effect/http-api"
import type { ApiKeyScope } from "../domain/ApiKeyInfo.ts"
import type { ApiKeyId, TenantId } from "../domain/Ids.ts"
import { Forbidden, NotFound, Unauthorized } from "./Problems.ts"

/** Who acts for the tenant: one of its API keys, or the operator (the admin token with `Codex-Tenant`). */
export type TenantActor = { readonly _tag: "ApiKey"; readonly keyId: ApiKeyId } | { readonly _tag: "Operator" }

/**
 * The tenant the request acts as (every `/v1` query is scoped by it), who acts, with what scope, and whether its
 * publishes must ask the event-type catalog (TenantAccess).
 */
export class CurrentTenant extends Context.Service<
  CurrentTenant,
  {
    readonly id: TenantId
    readonly actor: TenantActor
    readonly scope: ApiKeyScope
    readonly catalogInUse: boolean
  }
>()("codex/CurrentTenant") {}

/**
 * `Authorization: Bearer ck_...` on every `/v1` route: 401 for any key that does not work (unknown, revoked, expired),
 * 403 for a `read` key on anything but GET and HEAD. The admin token with `Codex-Tenant: ten_...` acts as that tenant
 * (404 when there is no such tenant).
 */
export class TenantAuth extends HttpApiMiddleware.Service<TenantAuth, { provides: CurrentTenant }>()(
  "codex/TenantAuth",
  { security: { bearer: HttpApiSecurity.bearer }, error: [Unauthorized, Forbidden, NotFound] }
) {}

/**
 * `Authorization: Bearer $ADMIN_TOKEN` on `/admin`. Without a token configured outside development the whole group
 * answers 404, as if it did not exist.
 */
export class AdminAuth extends HttpApiMiddleware.Service<AdminAuth>()("codex/AdminAuth", {
  security: { bearer: HttpApiSecurity.bearer },
  error: [Unauthorized, NotFound]
}) {}
