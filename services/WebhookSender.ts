import { Context, type Duration, type Effect, Schema } from "effect"

/** What a receiver answered: its status, its `Retry-After`, and at most `responseExcerptBytes` of its body. */
export interface WebhookResponse {
  readonly status: number
  readonly retryAfter: string | undefined
  readonly excerpt: string
}

/**
 * No answer: `blocked` (the connect-time guard refused the destination; `detail` names the address, for development
 * and logs), `timeout` (no complete answer within the timeout), `network` (anything else: refused, reset, TLS...).
 */
export class SendFailed extends Schema.TaggedError<SendFailed>()("SendFailed", {
  reason: Schema.Literals(["blocked", "timeout", "network"]),
  detail: Schema.String
}) {}

export interface WebhookRequest {
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  /** For everything: connecting, sending, the answer's headers and the excerpt of its body. */
  readonly timeout: Duration.Duration
}

/**
 * The delivery worker's outbound HTTP: one POST, keep-alive connections pooled per origin, redirects never followed,
 * every new connection through the connect-time SSRF guard. Interrupting the effect aborts the request.
 */
export interface WebhookSenderShape {
  readonly post: (request: WebhookRequest) => Effect.Effect<WebhookResponse, SendFailed>
}

export class WebhookSender extends Context.Service<WebhookSender, WebhookSenderShape>()("codex/WebhookSender") {}
