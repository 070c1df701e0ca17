import { Clock, Effect, Option, Schema } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { ApiKeys } from "../../services/ApiKeys.ts"
import { Api } from "../api/Api.ts"
import { Conflict, UnprocessableContent } from "../api/Problems.ts"
import { CurrentTenant } from "../api/Security.ts"
import { lastFullKeyConfirmation } from "../domain/ApiKeyInfo.ts"
import { ApiKeyId } from "../domain/Ids.ts"
import { pageRequest, pageResponse } from "./Cursor.ts"
import { notFound, pathId } from "./Params.ts"

const apiKeyId = pathId(ApiKeyId, "API key")

/** The key that authenticated this request belongs to its tenant: a tenant gone since is a defect, not a 404. */
const ofAuthenticatedTenant = <A, E, R>(self: Effect.Effect<Option.Option<A>, E, R>) =>
  Effect.flatMap(
    self,
    Option.match({ onNone: () => Effect.die(new Error("the authenticated tenant vanished")), onSome: Effect.succeed })
  )

const lastFullKey = new Conflict({
  detail:
    "This is the tenant's last live `full` API key: without one, nothing can be changed until the admin issues a " +
    `new key. Create another full key first, or repeat the request with \`?confirm=${lastFullKeyConfirmation}\`.`
})

/** An expiry in the past would issue a key that never works: refused (422), as the contract says. */
const futureExpiry = (expiresAt: string | undefined) =>
  Effect.gen(function* () {
    if (expiresAt === undefined) return undefined
    const at = new Date(expiresAt)
    if (at.getTime() <= (yield* Clock.currentTimeMillis)) {
      return yield* new UnprocessableContent({ detail: "`expiresAt` must be in the future." })
    }
    return at
  })

export const ApiKeysHttp = HttpApiBuilder.group(
  Api,
  "apiKeys",
  Effect.fn(function* (handlers) {
    const keys = yield* ApiKeys
    return handlers
      .handle("create", ({ payload }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const expiresAt = yield* futureExpiry(payload.expiresAt)
          const input = { name: payload.name, scope: payload.scope ?? "full", expiresAt }
          return yield* keys.create(tenant.id, input).pipe(ofAuthenticatedTenant)
        })
      )
      .handle("list", ({ query }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const list = { name: "api-keys", owner: tenant.id, isId: Schema.is(ApiKeyId) }
          const page = yield* keys.list(tenant.id, yield* pageRequest(list, query)).pipe(ofAuthenticatedTenant)
          return pageResponse(list)(page)
        })
      )
      .handle("revoke", ({ params, query }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const id = yield* apiKeyId(params.id)
          const outcome = yield* keys.revoke(tenant.id, id, query.confirm === lastFullKeyConfirmation)
          if (outcome === "not-found") return yield* notFound("API key")
          if (outcome === "last-full-key") return yield* lastFullKey
        })
      )
  })
)
