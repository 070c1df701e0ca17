/**
 * `@codex-api/client/effect`: for Effect users, the contract itself (`Api`, the HttpApi the server implements) and
 * the client Effect derives from it, with the same credentials as the promise client. Errors are the contract's
 * typed problems (`NotFound`, `Conflict`, ...) in the error channel.
 */
import { Data, Effect } from "effect"
import { HttpClient, HttpClientRequest } from "effect/http"
import { HttpApiClient } from "effect/http-api"
import { Api } from "../../../src/api/Api.ts"
import { type CodexCredentials, credentialHeaders, routePath, tenantHeader } from "./credentials.ts"
import { type VerifyWebhookOptions, verifyWebhook as verify, type WebhookMessage } from "./webhooks.ts"

export { Api, type CodexCredentials, tenantHeader }

export type CodexEffectClientOptions = CodexCredentials & {
  /** The server, e.g. `https://codex.example.com`. */
  readonly baseUrl: string
}

/**
 * `HttpApiClient.make(Api)` with the credentials each route needs: `client.endpoints.get({ params: { id } })`.
 * Needs an `HttpClient` (`FetchHttpClient.layer`, or `NodeHttpClient.layerUndici` from @effect/platform-node).
 */
export const makeCodexClient = (options: CodexEffectClientOptions) =>
  HttpApiClient.make(Api, {
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    transformClient: HttpClient.mapRequest((request) =>
      HttpClientRequest.setHeaders(request, credentialHeaders(routePath(request.url, options.baseUrl), options))
    )
  })

/** The client `makeCodexClient` gives. */
export type CodexEffectClient = Effect.Success<ReturnType<typeof makeCodexClient>>

export class WebhookVerificationFailed extends Data.TaggedError("WebhookVerificationFailed")<{
  readonly reason: string
}> {}

/** `verifyWebhook` of `@codex-api/client` as an Effect: the message, or `WebhookVerificationFailed`. */
export const verifyWebhook = <A = unknown>(
  options: VerifyWebhookOptions
): Effect.Effect<WebhookMessage<A>, WebhookVerificationFailed> =>
  Effect.suspend(() => {
    const verified = verify<A>(options)
    return verified.ok
      ? Effect.succeed(verified.message)
      : Effect.fail(new WebhookVerificationFailed({ reason: verified.reason }))
  })
