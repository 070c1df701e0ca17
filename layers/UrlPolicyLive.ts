import { lookup } from "node:dns/promises"
import { isIP } from "node:net"
import { Duration, Effect, Layer } from "effect"
import { AppConfig } from "../services/AppConfig.ts"
import { UrlNotAllowed, UrlPolicy } from "../services/UrlPolicy.ts"
import { isPublicAddress } from "../src/domain/NetworkPolicy.ts"

const resolveTimeout = Duration.seconds(5)

const hostOf = (url: URL): string =>
  url.hostname.startsWith("[") && url.hostname.endsWith("]") ? url.hostname.slice(1, -1) : url.hostname

/**
 * Scheme per environment (https outside development), then the SSRF guard unless `WEBHOOK_ALLOW_PRIVATE_NETWORKS`:
 * an IP literal must be public, and a name must resolve only to public addresses (one private answer among public
 * ones is refused: an attacker controls which one a later lookup returns).
 */
export const UrlPolicyLive: Layer.Layer<UrlPolicy, never, AppConfig> = Layer.effect(
  UrlPolicy,
  Effect.gen(function* () {
    const config = yield* AppConfig
    const requireHttps = config.appEnv !== "development"

    const check = Effect.fn("UrlPolicy.check")(function* (raw: string) {
      const url = yield* Effect.try({
        try: () => new URL(raw),
        catch: () => new UrlNotAllowed({ reason: "not a valid absolute URL" })
      })
      if (url.protocol !== "https:" && url.protocol !== "http:") {
        return yield* new UrlNotAllowed({ reason: "the URL scheme must be http or https" })
      }
      if (requireHttps && url.protocol !== "https:") {
        return yield* new UrlNotAllowed({ reason: `https is required in ${config.appEnv}` })
      }
      if (config.webhookAllowPrivateNetworks) return
      const host = hostOf(url)
      if (isIP(host) !== 0) {
        if (!isPublicAddress(host)) {
          return yield* new UrlNotAllowed({ reason: "the address is in a private or reserved network" })
        }
        return
      }
      const addresses = yield* Effect.tryPromise(() => lookup(host, { all: true, verbatim: true })).pipe(
        Effect.timeout(resolveTimeout),
        Effect.mapError(() => new UrlNotAllowed({ reason: `the host ${host} does not resolve` }))
      )
      if (addresses.length === 0 || addresses.some((a) => !isPublicAddress(a.address))) {
        return yield* new UrlNotAllowed({ reason: `the host ${host} resolves to a private or reserved address` })
      }
    })

    return UrlPolicy.of({ check })
  })
)
