import { Webhook } from "standardwebhooks"

/** A verified webhook: its `webhook-id` (the event's id) and the body codex-api sends, `{ type, timestamp, data }`. */
export interface WebhookMessage<Data = unknown> {
  readonly id: string
  readonly type: string
  readonly timestamp: string
  readonly data: Data
}

export type WebhookVerification<Data = unknown> =
  | { readonly ok: true; readonly message: WebhookMessage<Data> }
  | { readonly ok: false; readonly reason: string }

/** A request's headers: a fetch `Headers`, or Node's `req.headers`. */
export type WebhookHeaders = Headers | Readonly<Record<string, string | ReadonlyArray<string> | undefined>>

export interface VerifyWebhookOptions {
  /**
   * The endpoint's signing secret (`whsec_...`, from `GET /v1/endpoints/{id}/secret`). During a rotation both secrets
   * sign each delivery; pass several to accept a request signed by any of them.
   */
  readonly secret: string | ReadonlyArray<string>
  /** The raw request body, exactly as received: verify before parsing (re-serialised JSON no longer matches). */
  readonly body: string | Uint8Array
  readonly headers: WebhookHeaders
}

const signatureHeaders = ["webhook-id", "webhook-timestamp", "webhook-signature"] as const

const headerRecord = (headers: WebhookHeaders): Record<string, string> => {
  const read = (name: string): string | undefined => {
    if (headers instanceof Headers) return headers.get(name) ?? undefined
    const value = headers[name] ?? headers[name.toLowerCase()]
    return typeof value === "string" ? value : value?.join(", ")
  }
  return Object.fromEntries(
    signatureHeaders.flatMap((name) => {
      const value = read(name)
      return value === undefined ? [] : [[name, value]]
    })
  )
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null

/**
 * Checks a webhook request's Standard Webhooks signature and timestamp (at most 5 minutes off) with the
 * `standardwebhooks` library, then its body's shape. Never throws: `{ ok: false, reason }` for a request to refuse
 * (answer it 400 or 401 so codex-api records the failure).
 */
export const verifyWebhook = <Data = unknown>(options: VerifyWebhookOptions): WebhookVerification<Data> => {
  const body = typeof options.body === "string" ? options.body : new TextDecoder().decode(options.body)
  const headers = headerRecord(options.headers)
  const secrets = typeof options.secret === "string" ? [options.secret] : options.secret
  let reason = "no signing secret given"
  for (const secret of secrets) {
    let payload: unknown
    try {
      payload = new Webhook(secret).verify(body, headers)
    } catch (error) {
      reason = error instanceof Error ? error.message : String(error)
      continue
    }
    if (!isRecord(payload) || typeof payload.type !== "string" || typeof payload.timestamp !== "string") {
      return { ok: false, reason: "The body is not a codex-api webhook ({ type, timestamp, data })" }
    }
    const message = { id: headers["webhook-id"] ?? "", type: payload.type, timestamp: payload.timestamp }
    return { ok: true, message: { ...message, data: payload.data as Data } }
  }
  return { ok: false, reason }
}
