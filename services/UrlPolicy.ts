import { Context, type Effect, Schema } from "effect"

/** `reason` is shown to the tenant (in the 422, and in a `blocked` attempt's error). */
export class UrlNotAllowed extends Schema.TaggedError<UrlNotAllowed>()("UrlNotAllowed", {
  reason: Schema.String
}) {}

/**
 * What a tenant is told outside development for every refused destination: a non-public address, a name resolving
 * to one, a name that does not resolve or answers too slowly, a port not allowed. One text, so refusals cannot be
 * used to map internal DNS and networks. Development keeps the detailed reasons.
 */
export const destinationNotPermitted = "the destination is not permitted"

/**
 * Decides whether a webhook URL may be called: scheme rules per environment, the allowed ports, and the SSRF guard
 * (the host must not be, or resolve to, a non-public address unless private networks are allowed). Run when an
 * endpoint is saved and again before each delivery, since DNS answers change.
 */
export interface UrlPolicyShape {
  readonly check: (url: string) => Effect.Effect<void, UrlNotAllowed>
}

export class UrlPolicy extends Context.Service<UrlPolicy, UrlPolicyShape>()("codex/UrlPolicy") {}
