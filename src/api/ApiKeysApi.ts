import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { ApiKeyInfo, CreateApiKey, CreatedApiKey, lastFullKeyConfirmation } from "../domain/ApiKeyInfo.ts"
import { Idempotency } from "./Idempotency.ts"
import { JsonBody } from "./JsonBody.ts"
import { Page, PageQuery } from "./Pagination.ts"
import { BadRequest, Conflict, NotFound, UnprocessableContent } from "./Problems.ts"
import { TenantAuth } from "./Security.ts"

/** A page of a tenant's keys: `/v1/api-keys` and the admin's `/admin/tenants/{id}/api-keys`. */
export const ApiKeyPage = Page(ApiKeyInfo, "ApiKeyPage")

export class ApiKeysApi extends HttpApiGroup.make("apiKeys")
  .add(
    HttpApiEndpoint.post("create", "/api-keys", {
      payload: CreateApiKey,
      success: CreatedApiKey.pipe(HttpApiSchema.status(201)),
      error: UnprocessableContent
    })
      .middleware(Idempotency)
      .annotateMerge(
        OpenApi.annotations({
          summary: "Issue an API key for your tenant (the only time the key is shown)",
          description:
            "`scope` is `full` (default) or `read` (GET and HEAD only: any other request with it is 403). " +
            "`expiresAt`, when given, must be in the future (422 otherwise); from then on the key gets 401."
        })
      ),
    HttpApiEndpoint.get("list", "/api-keys", {
      query: PageQuery,
      success: ApiKeyPage,
      error: BadRequest
    }).annotateMerge(
      OpenApi.annotations({
        summary: "List your tenant's API keys, newest first",
        description: "Revoked and expired keys included. The keys themselves are never shown again: only prefixes."
      })
    ),
    HttpApiEndpoint.delete("revoke", "/api-keys/:id", {
      params: { id: Schema.String },
      query: {
        confirm: Schema.optional(
          Schema.Literal(lastFullKeyConfirmation).annotate({
            description: "Revoke even the tenant's last live `full` key (no write will be possible afterwards)."
          })
        )
      },
      success: HttpApiSchema.NoContent,
      error: [NotFound, Conflict]
    }).annotateMerge(
      OpenApi.annotations({
        summary: "Revoke an API key",
        description:
          "Requests with the key get 401 at once, on every replica. A key may revoke itself. Revoking the tenant's " +
          `last live (not revoked, not expired) \`full\` key is refused with 409 unless \`?confirm=${lastFullKeyConfirmation}\` ` +
          "is given: without a full key the tenant can change nothing until the admin issues one. 404 for a key of " +
          "another tenant or none; revoking a revoked key again is a 204 that keeps the first revocation time."
      })
    )
  )
  .middleware(JsonBody)
  .middleware(TenantAuth)
  .prefix("/v1")
  .annotateMerge(
    OpenApi.annotations({
      title: "API keys",
      description: "Your tenant's API keys: issue keys (full or read-only, optionally expiring), list and revoke them."
    })
  ) {}
