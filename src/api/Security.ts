import { Context } from "effect"
import { HttpApiMiddleware, HttpApiSecurity } from "effect/http-api"
import type { TenantId } from "../domain/Ids.ts"
import { NotFound, Unauthorized } from "./Problems.ts"

/** The tenant the request's API key belongs to; every `/v1` query is scoped by it. */
export class CurrentTenant extends Context.Service<CurrentTenant, { readonly id: TenantId }>()("codex/CurrentTenant") {}

/** `Authorization: Bearer ck_...` on every `/v1` route. */
export class TenantAuth extends HttpApiMiddleware.Service<TenantAuth, { provides: CurrentTenant }>()(
  "codex/TenantAuth",
  { security: { bearer: HttpApiSecurity.bearer }, error: Unauthorized }
) {}

/**
 * `Authorization: Bearer $ADMIN_TOKEN` on `/admin`. Without a token configured outside development the whole group
 * answers 404, as if it did not exist.
 */
export class AdminAuth extends HttpApiMiddleware.Service<AdminAuth>()("codex/AdminAuth", {
  security: { bearer: HttpApiSecurity.bearer },
  error: [Unauthorized, NotFound]
}) {}
