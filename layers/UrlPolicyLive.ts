import { lookup } from "node:dns/promises"
import { isIP } from "node:net"
import { Duration, Effect, Layer, Option } from "effect"
import { AppConfig, type AppConfigShape } from "../services/AppConfig.ts"
import { destinationNotPermitted, UrlNotAllowed, UrlPolicy, type UrlPolicyShape } from "../services/UrlPolicy.ts"
import { effectivePort, formatAllowedPorts, isPortAllowed } from "../src/domain/AllowedPorts.ts"
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
 * Scheme per environment (https outside development), the allowed ports (always, development included: local
 * receivers listen on high ports), then the SSRF guard unless `WEBHOOK_ALLOW_PRIVATE_NETWORKS`: an IP literal must be
 * public, and a name must resolve only to public addresses (one private answer among public ones is refused: an
 * attacker controls which one a later lookup returns). The URL is read the way `fetch` reads it (WHATWG), so
 * `http://2130706433/`, `http://0x7f.1/` and `http://[::ffff:127.0.0.1]/` are all seen as loopback.
 *
 * A refused destination's reason is told to the tenant only in development; elsewhere the tenant gets
 * `destinationNotPermitted` whatever the reason, and the reason is logged at debug (host and port, never the URL,
 * whose path, query or userinfo may hold the tenant's secrets).
 */
export const makeUrlPolicy = (config: AppConfigShape, resolve: Resolver = systemResolver): UrlPolicyShape => {
  const requireHttps = config.appEnv !== "development"
  const detailed = config.appEnv === "development"
  const ports = formatAllowedPorts(config.webhookAllowedPorts)

  /** Why the URL's destination (port, address, DNS answers) is refused; undefined when it may be called. */
  const destinationRefusal = (url: URL): Effect.Effect<string | undefined> =>
    Effect.gen(function* () {
      const port = effectivePort(url)
      if (!isPortAllowed(config.webhookAllowedPorts, port)) {
        return `port ${port} is not allowed (WEBHOOK_ALLOWED_PORTS=${ports})`
      }
      if (config.webhookAllowPrivateNetworks) return undefined
      const host = hostOf(url)
      if (isIP(host) !== 0) {
        return isPublicAddress(host) ? undefined : "the address is in a private or reserved network"
      }
      const addresses = yield* resolve(host).pipe(Effect.timeout(resolveTimeout), Effect.option)
      if (Option.isNone(addresses)) return `the host ${host} does not resolve`
      if (addresses.value.length === 0 || addresses.value.some((address) => !isPublicAddress(address))) {
        return `the host ${host} resolves to a private or reserved address`
      }
      return undefined
    })

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
    const refusal = yield* destinationRefusal(url)
    if (refusal === undefined) return
    yield* Effect.logDebug("webhook URL refused").pipe(
      Effect.annotateLogs({ host: url.hostname, port: effectivePort(url), reason: refusal })
    )
    return yield* new UrlNotAllowed({ reason: detailed ? refusal : destinationNotPermitted })
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
