import { Effect, Schema } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { ApiKeyAuth } from "../../services/ApiKeyAuth.ts"
import { ApiKeys } from "../../services/ApiKeys.ts"
import { TenantDeletion } from "../../services/TenantDeletion.ts"
import { type TenantDeleting, Tenants } from "../../services/Tenants.ts"
import { Api } from "../api/Api.ts"
import { Conflict } from "../api/Problems.ts"
import { ApiKeyId, TenantId } from "../domain/Ids.ts"
import { pageRequest, pageResponse } from "./Cursor.ts"
import { notFound, orNotFound, pathId } from "./Params.ts"

const tenantId = pathId(TenantId, "tenant")

const deletingConflict = (_: TenantDeleting) =>
  Effect.fail(new Conflict({ detail: "The tenant is being deleted: it can no longer be changed or get new keys." }))
const apiKeyId = pathId(ApiKeyId, "API key")

export const AdminHttp = HttpApiBuilder.group(
  Api,
  "admin",
  Effect.fn(function* (handlers) {
    const tenants = yield* Tenants
    const deletion = yield* TenantDeletion
    const keys = yield* ApiKeys
    const auth = yield* ApiKeyAuth
    return handlers
      .handle("createTenant", ({ payload }) => tenants.create(payload))
      .handle("listTenants", ({ query }) => {
        const list = { name: "tenants", owner: "admin", isId: Schema.is(TenantId) }
        return Effect.flatMap(pageRequest(list, query), (page) =>
          tenants.list(page).pipe(Effect.map(pageResponse(list)))
        )
      })
      .handle("getTenant", ({ params }) =>
        tenantId(params.id).pipe(
          Effect.flatMap((id) => tenants.get(id)),
          orNotFound("tenant")
        )
      )
      .handle("updateTenant", ({ params, payload }) =>
        tenantId(params.id).pipe(
          Effect.flatMap((id) => tenants.update(id, payload)),
          Effect.catchTag("TenantDeleting", deletingConflict),
          orNotFound("tenant"),
          // Strict mode rides with the tenant's cached keys (ApiKeyOwner.catalogInUse): forgotten here at once.
          Effect.tap((tenant) =>
            payload.strictEventTypes === undefined ? Effect.void : auth.invalidateTenant(tenant.id)
          )
        )
      )
      .handle("createApiKey", ({ params }) =>
        tenantId(params.id).pipe(
          Effect.flatMap((id) => tenants.issueApiKey(id)),
          Effect.catchTag("TenantDeleting", deletingConflict),
          orNotFound("tenant")
        )
      )
      .handle("deleteTenant", ({ params }) =>
        Effect.gen(function* () {
          const id = yield* tenantId(params.id)
          if (!(yield* deletion.request(id))) return yield* notFound("tenant")
          // Between the request and this read the removal may have finished: then it is gone, as a repeat would say.
          return yield* tenants.get(id).pipe(orNotFound("tenant"))
        })
      )
      .handle("listApiKeys", ({ params, query }) =>
        Effect.gen(function* () {
          const id = yield* tenantId(params.id)
          const list = { name: `api-keys:${id}`, owner: "admin", isId: Schema.is(ApiKeyId) }
          const page = yield* keys.list(id, yield* pageRequest(list, query)).pipe(orNotFound("tenant"))
          return pageResponse(list)(page)
        })
      )
      .handle("revokeApiKey", ({ params }) =>
        apiKeyId(params.id).pipe(
          Effect.flatMap((id) => keys.revokeAny(id)),
          Effect.flatMap((revoked) => (revoked ? Effect.void : Effect.fail(notFound("API key"))))
        )
      )
  })
)
