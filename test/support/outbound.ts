import { Effect } from "effect"
import { HttpClient } from "effect/http"
import { blockedAtConnect } from "../../layers/DeliveryHttpClient.ts"

/**
 * A GET through the outbound (delivery) HTTP client in context: the status, the connect-time guard's refusal, or
 * `other: <message>` for any other failure.
 */
export const outboundGet = (url: string) =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    return yield* client.get(url).pipe(
      Effect.map((response): number | string => response.status),
      Effect.catch((error) => Effect.succeed(blockedAtConnect(error) ?? `other: ${error.message}`)),
      Effect.scoped
    )
  })
