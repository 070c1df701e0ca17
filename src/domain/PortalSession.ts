import { randomBytes } from "node:crypto"
import { Effect, Redacted, Schema } from "effect"
import { hashApiKey } from "./ApiKey.ts"
import { PortalSessionId } from "./Ids.ts"

/**
 * Portal sessions (issue 23): a link to `/portal` carrying a short-lived token that works on `/v1` as its tenant.
 * The token is a credential like an API key — 256 random bits, stored only as its SHA-256 — with its own prefix, so
 * the key lookup tells the two apart without a query.
 */
export const portalTokenPrefix = "cps_"

/** `cps_` + 32 random bytes in base64url (43 chars). */
export const portalTokenFormat = /^cps_[A-Za-z0-9_-]{43}$/

/** Whether a bearer credential is meant as a portal token (well-formed or not): it is never an API key or admin token. */
export const isPortalToken = (credential: string): boolean => credential.startsWith(portalTokenPrefix)

export interface IssuedPortalToken {
  /** The token itself: in the link only, never stored or logged. */
  readonly secret: Redacted.Redacted<string>
  readonly hash: Uint8Array
}

export const issuePortalToken: Effect.Effect<IssuedPortalToken> = Effect.sync(() => {
  const secret = `${portalTokenPrefix}${randomBytes(32).toString("base64url")}`
  return { secret: Redacted.make(secret), hash: hashApiKey(secret) }
})

/**
 * The link: the token rides in the URL's fragment, which browsers never send, so it reaches no access log, proxy or
 * `Referer`. The page reads it, drops it from the address bar and keeps it in sessionStorage. `readOnly=1` only tells
 * the page to hide what it may not do: the server refuses a read-only session's writes whatever the link says.
 */
export const portalUrl = (origin: string, token: string, readOnly: boolean): string =>
  `${origin}/portal#token=${token}${readOnly ? "&readOnly=1" : ""}`

export const CreatePortalSession = Schema.Struct({
  readOnly: Schema.optionalKey(
    Schema.Boolean.annotate({
      description:
        "The session may only read (GET and HEAD): its writes get 403, like a `read` API key's. Default false."
    })
  ),
  expiresIn: Schema.optionalKey(
    Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)).annotate({
      description:
        "Seconds until the link stops working, 1 up to PORTAL_SESSION_TTL (422 above it). Default: PORTAL_SESSION_TTL " +
        "(1 hour unless configured)."
    })
  )
}).annotate({ identifier: "CreatePortalSession", examples: [{ readOnly: false, expiresIn: 900 }] })
export type CreatePortalSession = typeof CreatePortalSession.Type

export const PortalSession = Schema.Struct({
  id: PortalSessionId.annotate({ examples: [PortalSessionId.make("pss_01JD0000000000000000000000")] }),
  url: Schema.String.annotate({
    description:
      "The portal link, with the session's token in its fragment (`/portal#token=cps_...`). Shown only in this " +
      "response: redirect the user to it or put it in an iframe now."
  }),
  expiresAt: Schema.String.annotate({ description: "When the link stops working (ISO 8601); then 401." }),
  readOnly: Schema.Boolean
}).annotate({ identifier: "PortalSession" })
export type PortalSession = typeof PortalSession.Type
