import { Duration, Effect } from "effect"
import { WebhookSender } from "../../services/WebhookSender.ts"

/**
 * A POST through the outbound (delivery) sender in context: the status, the connect-time guard's refusal, or
 * `other: <reason>: <detail>` for any other failure.
 */
export const outboundPost = (url: string) =>
  Effect.gen(function* () {
    const sender = yield* WebhookSender
    return yield* sender.post({ url, headers: {}, body: "{}", timeout: Duration.seconds(10) }).pipe(
      Effect.map((response): number | string => response.status),
      Effect.catch((error) =>
        Effect.succeed(error.reason === "blocked" ? error.detail : `other: ${error.reason}: ${error.detail}`)
      )
    )
  })
