import { createHash, timingSafeEqual } from "node:crypto"
import { Option, Redacted } from "effect"
import type { AppConfigShape } from "../../services/AppConfig.ts"

/** The operator header: with the admin token, a `/v1` request acts as the tenant it names (as Stripe-Account does). */
export const tenantHeader = "codex-tenant"

const digest = (value: string) => createHash("sha256").update(value).digest()

/**
 * Whether a bearer credential is ADMIN_TOKEN, compared in constant time (both sides hashed first, so lengths match
 * too). Always false when no token is configured.
 */
export const makeAdminTokenCheck = (config: AppConfigShape): ((credential: string) => boolean) => {
  const expected = Option.map(config.adminToken, (token) => digest(Redacted.value(token)))
  if (Option.isNone(expected)) return () => false
  return (credential) => timingSafeEqual(digest(credential), expected.value)
}
