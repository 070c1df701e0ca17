import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { CreatePortalSession, PortalSession } from "../domain/PortalSession.ts"
import { Idempotency } from "./Idempotency.ts"
import { JsonBody } from "./JsonBody.ts"
import { NoRequestBody } from "./NoRequestBody.ts"
import { BadRequest, NotFound, UnprocessableContent } from "./Problems.ts"
import { AdminAuth, TenantAuth } from "./Security.ts"

const idParam = { id: Schema.String }

/** No body at all (a bare `curl -X POST`) asks for the defaults, as `{}` does. */
const OptionalBody = [CreatePortalSession, Schema.Null] as const

const createDescription =
  "The body is optional: none (or `null`) asks for the defaults, as `{}` does. Answers a link to `/portal`, the page where the tenant's people manage its webhooks, with a token in its fragment " +
  "(`#token=cps_...`): redirect the user there or put it in an iframe (PORTAL_FRAME_ANCESTORS names the sites that " +
  "may embed it). The token works on `/v1` as the tenant until `expiresAt` (`expiresIn` seconds, default and at most " +
  "PORTAL_SESSION_TTL; 422 above it) or its revocation; never on `/admin`, `/v1/api-keys` or " +
  "`/v1/portal-sessions` (403). `readOnly` sessions get 403 on writes. The link is built on PUBLIC_URL (unset: the " +
  "origin this request was sent to)."

const revokeDescription =
  "The session's token gets 401 at once, on every replica. Revoking a revoked or expired session is a 204 again; 404 " +
  "for an unknown id."

/** The tenant's own portal sessions (a `full` API key; never a portal session itself). */
export class PortalSessionsApi extends HttpApiGroup.make("portalSessions")
  .add(
    HttpApiEndpoint.post("create", "/portal-sessions", {
      payload: OptionalBody,
      success: PortalSession.pipe(HttpApiSchema.status(201)),
      // 404: the tenant's deletion began after its key was checked.
      error: [NotFound, UnprocessableContent, BadRequest]
    })
      .middleware(Idempotency)
      .annotateMerge(
        OpenApi.annotations({ summary: "Open a portal session for your tenant", description: createDescription })
      ),
    HttpApiEndpoint.delete("revoke", "/portal-sessions/:id", {
      params: idParam,
      success: HttpApiSchema.NoContent,
      error: NotFound
    })
      .middleware(NoRequestBody)
      .annotateMerge(
        OpenApi.annotations({
          summary: "Revoke a portal session",
          description: `${revokeDescription} 404 for another tenant's session.`
        })
      )
  )
  .middleware(JsonBody)
  .middleware(TenantAuth)
  .prefix("/v1")
  .annotateMerge(
    OpenApi.annotations({
      title: "Portal sessions",
      description: "Links to the tenant portal (`/portal`), a page where the tenant's people manage its webhooks."
    })
  ) {}

/** The operator's portal sessions: for any tenant, by the admin token. */
export class AdminPortalSessionsApi extends HttpApiGroup.make("adminPortalSessions")
  .add(
    HttpApiEndpoint.post("create", "/tenants/:id/portal-sessions", {
      params: idParam,
      payload: OptionalBody,
      success: PortalSession.pipe(HttpApiSchema.status(201)),
      error: [NotFound, UnprocessableContent, BadRequest]
    })
      .middleware(Idempotency)
      .annotateMerge(
        OpenApi.annotations({
          summary: "Open a portal session for a tenant",
          description: `${createDescription} 404 for an unknown tenant or one being deleted.`
        })
      ),
    HttpApiEndpoint.delete("revoke", "/portal-sessions/:id", {
      params: idParam,
      success: HttpApiSchema.NoContent,
      error: NotFound
    })
      .middleware(NoRequestBody)
      .annotateMerge(
        OpenApi.annotations({ summary: "Revoke any tenant's portal session", description: revokeDescription })
      )
  )
  .middleware(JsonBody)
  .middleware(AdminAuth)
  .prefix("/admin")
  .annotateMerge(
    OpenApi.annotations({
      title: "Admin: portal sessions",
      description: "Portal links for any tenant. Bearer ADMIN_TOKEN."
    })
  ) {}
