import { Context, type Duration, type Effect, type Option } from "effect"
import type { PortalSessionId, TenantId } from "../src/domain/Ids.ts"

export interface NewPortalSession {
  readonly readOnly: boolean
  /** How long the session lasts (at most PORTAL_SESSION_TTL: the caller checked). */
  readonly lifetime: Duration.Duration
}

/** A session just created: its token is here and nowhere else (only its hash is stored). */
export interface CreatedPortalSession {
  readonly id: PortalSessionId
  readonly token: string
  readonly readOnly: boolean
  readonly expiresAt: string
}

/**
 * Portal sessions (issue 23): short-lived credentials of a tenant for its people's browsers (`/portal`). Resolving a
 * token is ApiKeyAuth's (one cache for every credential of a tenant); here they are made and revoked. A revocation
 * applies at once on every replica, as an API key's does.
 */
export interface PortalSessionsShape {
  /** None when the tenant does not exist or is being deleted. Clears the tenant's sessions expired a day ago. */
  readonly create: (tenantId: TenantId, input: NewPortalSession) => Effect.Effect<Option.Option<CreatedPortalSession>>
  /**
   * Revokes a session of `tenantId` (the tenant's own DELETE), or of any tenant (`"any"`: the admin's). Revoking a
   * revoked or expired session keeps it so and succeeds; false when no such session exists (for that tenant).
   */
  readonly revoke: (tenantId: TenantId | "any", id: PortalSessionId) => Effect.Effect<boolean>
}

export class PortalSessions extends Context.Service<PortalSessions, PortalSessionsShape>()("codex/PortalSessions") {}
