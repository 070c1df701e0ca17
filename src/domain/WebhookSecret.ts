import { randomBytes } from "node:crypto"
import { Duration, Effect } from "effect"

/** Standard Webhooks secret: `whsec_` + base64 of 32 random bytes (the spec asks for at least 24). */
export const newWebhookSecret: Effect.Effect<string> = Effect.sync(() => `whsec_${randomBytes(32).toString("base64")}`)

/** After a rotation the previous secret keeps signing for this long, so receivers can switch without a gap. */
export const secretRotationOverlap = Duration.hours(24)
