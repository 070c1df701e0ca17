import { Context } from "effect"
import { HttpApiMiddleware, HttpApiSecurity } from "effect/http-api"
import type { TenantCredential } from "../domain/ApiKey.ts"
import type { ApiKeyScope } from "../domain/ApiKeyInfo.ts"
import type { TenantId } from "../domain/Ids.ts"
import { Forbidden, NotFound, Unauthorized } from "./Problems.ts"

/**
 * Who acts for the tenant: one of its API keys, a portal session (a person in the tenant portal), or the operator (the
 * admin token with `Codex-Tenant`).
 */
export type TenantActor = TenantCredential | { readonly _tag: "Operator" }

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
 * (404 when there is no such tenant). A portal session's token (`cps_...`) acts as its tenant too, but is a 403 on the
 * routes that manage credentials (API keys, portal sessions); a read-only one is a 403 on writes, as a `read` key is.
 */
export class TenantAuth extends HttpApiMiddleware.Service<TenantAuth, { provides: CurrentTenant }>()(
  "codex/TenantAuth",
  { security: { bearer: HttpApiSecurity.bearer }, error: [Unauthorized, Forbidden, NotFound] }
) {}

/**
 * `Authorization: Bearer $ADMIN_TOKEN` on `/admin`. Without a token configured outside development the whole group
 * answers 404, as if it did not exist. A portal session's token is a 403 there, even while development leaves the
 * admin API open.
 */
export class AdminAuth extends HttpApiMiddleware.Service<AdminAuth>()("codex/AdminAuth", {
  security: { bearer: HttpApiSecurity.bearer },
  error: [Unauthorized, NotFound, Forbidden]
}) {}
