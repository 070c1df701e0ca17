import { lookup } from "node:dns/promises"
import { isIP } from "node:net"
import { Duration, Effect, Layer } from "effect"
import { AppConfig, type AppConfigShape } from "../services/AppConfig.ts"
import { UrlNotAllowed, UrlPolicy, type UrlPolicyShape } from "../services/UrlPolicy.ts"
import { isPublicAddress } from "../src/domain/NetworkPolicy.ts"

const resolveTimeout = Duration.seconds(5)

/** Every address a host name resolves to (A and AAAA). Any failure means "does not resolve". */
export type Resolver = (host: string) => Effect.Effect<ReadonlyArray<string>, unknown>

/** The system resolver (getaddrinfo: /etc/hosts, then DNS), as connecting to the host would use it. */
export const systemResolver: Resolver = (host) =>
  Effect.tryPromise(() => lookup(host, { all: true, verbatim: true })).pipe(
    Effect.map((answers) => answers.map((answer) => answer.address))
  )

const hostOf = (url: URL): string =>
  url.hostname.startsWith("[") && url.hostname.endsWith("]") ? url.hostname.slice(1, -1) : url.hostname

/**
 * Scheme per environment (https outside development), then the SSRF guard unless `WEBHOOK_ALLOW_PRIVATE_NETWORKS`:
 * an IP literal must be public, and a name must resolve only to public addresses (one private answer among public
 * ones is refused: an attacker controls which one a later lookup returns). The URL is read the way `fetch` reads it
 * (WHATWG), so `http://2130706433/`, `http://0x7f.1/` and `http://[::ffff:127.0.0.1]/` are all seen as loopback.
 */
export const makeUrlPolicy = (config: AppConfigShape, resolve: Resolver = systemResolver): UrlPolicyShape => {
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
    const addresses = yield* resolve(host).pipe(
      Effect.timeout(resolveTimeout),
      Effect.mapError(() => new UrlNotAllowed({ reason: `the host ${host} does not resolve` }))
    )
    if (addresses.length === 0 || addresses.some((address) => !isPublicAddress(address))) {
      return yield* new UrlNotAllowed({ reason: `the host ${host} resolves to a private or reserved address` })
    }
  })

  return UrlPolicy.of({ check })
}

/** The URL policy with a given resolver (tests use a fake one to script DNS answers). */
export const urlPolicyWith = (resolve: Resolver): Layer.Layer<UrlPolicy, never, AppConfig> =>
  Layer.effect(
    UrlPolicy,
    Effect.gen(function* () {
      return makeUrlPolicy(yield* AppConfig, resolve)
    })
  )

export const UrlPolicyLive: Layer.Layer<UrlPolicy, never, AppConfig> = urlPolicyWith(systemResolver)
