import { Context, type Effect, Schema } from "effect"

export class UrlNotAllowed extends Schema.TaggedError<UrlNotAllowed>()("UrlNotAllowed", {
  reason: Schema.String
}) {}

/**
 * Decides whether a webhook URL may be called: scheme rules per environment and the SSRF guard (the host must not be,
 * or resolve to, a non-public address unless private networks are allowed). Run when an endpoint is saved and again
 * before each delivery, since DNS answers change.
 */
export interface UrlPolicyShape {
  readonly check: (url: string) => Effect.Effect<void, UrlNotAllowed>
}

export class UrlPolicy extends Context.Service<UrlPolicy, UrlPolicyShape>()("codex/UrlPolicy") {}
