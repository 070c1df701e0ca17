import { createHash, randomBytes } from "node:crypto"
import { Effect, Redacted } from "effect"
import type { ApiKeyId, PortalSessionId } from "./Ids.ts"

/**
 * The PostgreSQL channel a change to a tenant's keys notifies (payload: the tenant id), in the transaction making it:
 * every replica then forgets the keys it cached for that tenant (ApiKeyAuth's `invalidateTenant`).
 */
export const apiKeysChannel = "codex_api_keys"

/** How many characters of a key are kept for display (`ck_` + 8), enough to tell keys apart, useless to attackers. */
const displayPrefixLength = 11

export interface IssuedApiKey {
  /** The key itself: shown to the caller once, never stored or logged. */
  readonly secret: Redacted.Redacted<string>
  readonly hash: Uint8Array
  readonly prefix: string
}

/** SHA-256 of the key. Keys carry 256 random bits, so a fast unsalted hash is enough (no dictionary to attack). */
export const hashApiKey = (key: string): Uint8Array => createHash("sha256").update(key).digest()

/** `ck_` + 32 random bytes in base64url (43 chars). */
export const issueApiKey: Effect.Effect<IssuedApiKey> = Effect.sync(() => {
  const secret = `ck_${randomBytes(32).toString("base64url")}`
  return { secret: Redacted.make(secret), hash: hashApiKey(secret), prefix: secret.slice(0, displayPrefixLength) }
})

/**
 * What authenticated a `/v1` request as its tenant: one of the tenant's API keys, or a portal session
 * (src/domain/PortalSession.ts).
 */
export type TenantCredential =
  | { readonly _tag: "ApiKey"; readonly keyId: ApiKeyId }
  | { readonly _tag: "PortalSession"; readonly sessionId: PortalSessionId }
