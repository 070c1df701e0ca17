import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { CreatedTenant, CreateTenant, IssuedApiKey, Tenant, TenantDetail, UpdateTenant } from "../domain/Tenant.ts"
import { ApiKeyPage } from "./ApiKeysApi.ts"
import { Idempotency } from "./Idempotency.ts"
import { JsonBody } from "./JsonBody.ts"
import { NoRequestBody } from "./NoRequestBody.ts"
import { Page, PageQuery } from "./Pagination.ts"
import { BadRequest, Conflict, NotFound } from "./Problems.ts"
import { AdminAuth } from "./Security.ts"

const idParam = { id: Schema.String }

export class AdminApi extends HttpApiGroup.make("admin")
  .add(
    HttpApiEndpoint.post("createTenant", "/tenants", {
      payload: CreateTenant,
      success: CreatedTenant.pipe(HttpApiSchema.status(201))
    })
      .middleware(Idempotency)
      .annotateMerge(
        OpenApi.annotations({ summary: "Create a tenant and its first API key (the only time the key is shown)" })
      ),
    HttpApiEndpoint.get("listTenants", "/tenants", {
      query: PageQuery,
      success: Page(Tenant, "TenantPage"),
      error: BadRequest
    }).annotateMerge(OpenApi.annotations({ summary: "List tenants, newest first" })),
    HttpApiEndpoint.get("getTenant", "/tenants/:id", {
      params: idParam,
      success: TenantDetail,
      error: NotFound
    }).annotateMerge(OpenApi.annotations({ summary: "Get a tenant and its API keys (prefixes only)" })),
    HttpApiEndpoint.patch("updateTenant", "/tenants/:id", {
      params: idParam,
      payload: UpdateTenant,
      success: Tenant,
      error: [NotFound, Conflict]
    })
      .middleware(Idempotency)
      .annotateMerge(
        OpenApi.annotations({
          summary: "Rename a tenant, set its rate limit, its retention or strict event types",
          description:
            "`rateLimit: null` returns the tenant to the server's default quota; `retentionSeconds: null` to the " +
            "server's RETENTION; `strictEventTypes: true` turns strict mode of the event-type catalog on. 409 while the " +
            "tenant is being deleted."
        })
      ),
    HttpApiEndpoint.post("createApiKey", "/tenants/:id/api-keys", {
      params: idParam,
      success: IssuedApiKey.pipe(HttpApiSchema.status(201)),
      error: [NotFound, Conflict]
    })
      .middleware(Idempotency)
      .middleware(NoRequestBody)
      .annotateMerge(
        OpenApi.annotations({
          summary: "Issue another API key for a tenant",
          description: "409 while the tenant is being deleted."
        })
      ),
    HttpApiEndpoint.delete("deleteTenant", "/tenants/:id", {
      params: idParam,
      success: TenantDetail.pipe(HttpApiSchema.status(202)),
      error: NotFound
    })
      .middleware(NoRequestBody)
      .annotateMerge(
        OpenApi.annotations({
          summary: "Delete a tenant and all its data",
          description:
            "At once: every API key of the tenant answers 401 (on every replica), its endpoints are disabled so " +
            "nothing more is delivered (a send already in flight finishes), and the tenant shows `status: " +
            '"deleting"`. Its events, deliveries, attempts, endpoints, keys and idempotency keys are then removed in ' +
            "the background, in batches, by the retention purge (every RETENTION_PURGE_INTERVAL); `GET " +
            "/admin/tenants/{id}` shows the progress (`deletion`) until the tenant is gone (404). Asking again while " +
            "it is being deleted answers the same (202, the first request's time); once it is gone, 404."
        })
      ),
    HttpApiEndpoint.get("listApiKeys", "/tenants/:id/api-keys", {
      params: idParam,
      query: PageQuery,
      success: ApiKeyPage,
      error: [NotFound, BadRequest]
    }).annotateMerge(
      OpenApi.annotations({
        summary: "List a tenant's API keys, newest first",
        description:
          "The tenant's own `GET /v1/api-keys`: revoked and expired keys included, never the keys themselves."
      })
    ),
    HttpApiEndpoint.delete("revokeApiKey", "/api-keys/:id", {
      params: idParam,
      success: HttpApiSchema.NoContent,
      error: NotFound
    }).annotateMerge(
      OpenApi.annotations({
        summary: "Revoke an API key",
        description:
          "Requests with the key fail with 401 at once, on every replica (within 5 seconds, the key cache's lifetime, " +
          "on a replica that cannot LISTEN for the revocation). Unlike the tenant's own DELETE, this may revoke the " +
          "tenant's last full key without confirmation."
      })
    )
  )
  .middleware(JsonBody)
  .middleware(AdminAuth)
  .prefix("/admin")
  .annotateMerge(OpenApi.annotations({ title: "Admin", description: "Tenants and API keys. Bearer ADMIN_TOKEN." })) {}
