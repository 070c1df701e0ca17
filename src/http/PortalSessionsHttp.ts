import { Duration, Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { AppConfig } from "../../services/AppConfig.ts"
import { type CreatedPortalSession, PortalSessions } from "../../services/PortalSessions.ts"
import { Api } from "../api/Api.ts"
import { UnprocessableContent } from "../api/Problems.ts"
import { CurrentTenant } from "../api/Security.ts"
import { PortalSessionId, type TenantId, TenantId as TenantIdSchema } from "../domain/Ids.ts"
import { type CreatePortalSession, type PortalSession, portalUrl } from "../domain/PortalSession.ts"
import { notFound, orNotFound, pathId } from "./Params.ts"
import { publicOrigin } from "./PublicOrigin.ts"

const sessionId = pathId(PortalSessionId, "portal session")
const tenantId = pathId(TenantIdSchema, "tenant")

/** The two groups share one way of opening and revoking a session; only whose tenant it is differs. */
const makeHandlers = Effect.gen(function* () {
  const sessions = yield* PortalSessions
  const config = yield* AppConfig
  const longest = Math.floor(Duration.toMillis(config.portal.sessionTtl) / 1000)

  /** `expiresIn` within PORTAL_SESSION_TTL (the contract checked it is a positive integer). */
  const lifetimeOf = (expiresIn: number | undefined) =>
    expiresIn === undefined
      ? Effect.succeed(config.portal.sessionTtl)
      : expiresIn > longest
        ? Effect.fail(
            new UnprocessableContent({
              detail: `\`expiresIn\` must be at most ${longest} seconds (PORTAL_SESSION_TTL).`,
              errors: [{ pointer: "/expiresIn", message: `must be at most ${longest}` }]
            })
          )
        : Effect.succeed(Duration.seconds(expiresIn))

  const answer = (created: CreatedPortalSession) =>
    Effect.map(
      publicOrigin(config),
      (origin): PortalSession => ({
        id: created.id,
        url: portalUrl(origin, created.token, created.readOnly),
        expiresAt: created.expiresAt,
        readOnly: created.readOnly
      })
    )

  const open = (owner: TenantId, body: CreatePortalSession | null) =>
    Effect.gen(function* () {
      const payload = body ?? {}
      const lifetime = yield* lifetimeOf(payload.expiresIn)
      // The origin is checked before anything is written: a session whose link cannot be made is never created.
      yield* publicOrigin(config)
      const created = yield* sessions
        .create(owner, { readOnly: payload.readOnly ?? false, lifetime })
        .pipe(orNotFound("tenant"))
      return yield* answer(created)
    })

  const revoke = (owner: TenantId | "any", raw: string) =>
    Effect.flatMap(sessionId(raw), (id) =>
      Effect.flatMap(sessions.revoke(owner, id), (revoked) =>
        revoked ? Effect.void : Effect.fail(notFound("portal session"))
      )
    )
  return { open, revoke }
})

/** `POST /v1/portal-sessions`, `DELETE /v1/portal-sessions/{id}`: the tenant of the request's API key. */
export const TenantPortalSessionsHttp = HttpApiBuilder.group(
  Api,
  "portalSessions",
  Effect.fn(function* (handlers) {
    const { open, revoke } = yield* makeHandlers
    return handlers
      .handle("create", ({ payload }) =>
        Effect.gen(function* () {
          return yield* open((yield* CurrentTenant).id, payload)
        })
      )
      .handle("revoke", ({ params }) =>
        Effect.gen(function* () {
          return yield* revoke((yield* CurrentTenant).id, params.id)
        })
      )
  })
)

/** `POST /admin/tenants/{id}/portal-sessions`, `DELETE /admin/portal-sessions/{id}`: any tenant. */
export const AdminPortalSessionsHttp = HttpApiBuilder.group(
  Api,
  "adminPortalSessions",
  Effect.fn(function* (handlers) {
    const { open, revoke } = yield* makeHandlers
    return handlers
      .handle("create", ({ params, payload }) => Effect.flatMap(tenantId(params.id), (id) => open(id, payload)))
      .handle("revoke", ({ params }) => revoke("any", params.id))
  })
)
