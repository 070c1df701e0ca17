import { lookup as dnsLookup } from "node:dns"
import { isIP, type LookupFunction } from "node:net"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { buildConnector } from "@effect/platform-node/Undici"
import { Effect, Layer } from "effect"
import type { HttpClient, HttpClientError } from "effect/http"
import { AppConfig } from "../services/AppConfig.ts"
import { type AllowedPorts, isPortAllowed } from "../src/domain/AllowedPorts.ts"
import { isPublicAddress } from "../src/domain/NetworkPolicy.ts"

/**
 * The connect-time guard refused a destination (an address, or a port). An `Error` because Node's and undici's
 * callbacks take one; the worker finds it in the `HttpClientError` cause chain and records the attempt as `blocked`.
 * The message is the detailed reason, for development and the logs.
 */
export class DestinationNotAllowed extends Error {
  readonly code = "ERR_CODEX_DESTINATION_NOT_ALLOWED"
  constructor(message: string) {
    super(message)
    this.name = "DestinationNotAllowed"
  }
}

const addressNotAllowed = (host: string, address: string): DestinationNotAllowed =>
  new DestinationNotAllowed(
    host === address
      ? `${address} is a private or reserved address`
      : `${host} is ${address}, a private or reserved address`
  )

/** The host of a URL as undici passes it (`[::1]` for IPv6 literals). */
const bare = (hostname: string): string =>
  hostname.startsWith("[") && hostname.endsWith("]") ? hostname.slice(1, -1) : hostname

/**
 * `dns.lookup` that refuses every answer set containing a non-public address (one private answer among public ones
 * is refused too: which one a connection uses is not ours to choose). Node's `net.connect` asks with `all: true`
 * (happy eyeballs) or without; both callback shapes are served.
 */
const guardedLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error !== null) return callback(error, [])
    const refused = addresses.find((answer) => !isPublicAddress(answer.address))
    if (refused !== undefined) return callback(addressNotAllowed(hostname, refused.address), [])
    const [first] = addresses
    if (options.all === true) return callback(null, addresses)
    if (first === undefined) return callback(new Error(`${hostname} has no address`), [])
    return callback(null, first.address, first.family)
  })
}

/** undici's port of a connection: the URL's, or the scheme's default when the URL names none. */
const portOf = (options: buildConnector.Options): number =>
  Number(options.port) || (options.protocol === "https:" ? 443 : 80)

/**
 * undici's connector with the guard at the moment of connecting. The port must be allowed (as when the URL was
 * checked: cheap, and it holds should a request ever reach a URL the policy did not see). Unless private networks are
 * allowed, the address actually used is checked too (DNS answers change between the check when an endpoint is saved
 * or claimed and the connection: DNS rebinding): names go through `guardedLookup`; IP literals, which Node never looks
 * up, are judged before connecting; and the socket's remote address is checked once more before a byte is written.
 */
const guardedConnector = (ports: AllowedPorts, allowPrivateNetworks: boolean): buildConnector.connector => {
  const connect = allowPrivateNetworks ? buildConnector({}) : buildConnector({ lookup: guardedLookup })
  return (options, callback) => {
    const host = bare(options.hostname)
    const port = portOf(options)
    if (!isPortAllowed(ports, port)) return callback(new DestinationNotAllowed(`port ${port} is not allowed`), null)
    if (allowPrivateNetworks) return connect(options, callback)
    if (isIP(host) !== 0 && !isPublicAddress(host)) return callback(addressNotAllowed(host, host), null)
    connect(options, (error, socket) => {
      if (error !== null) return callback(error, null)
      const remote = socket.remoteAddress
      if (remote === undefined || !isPublicAddress(remote)) {
        socket.destroy()
        return callback(addressNotAllowed(host, remote ?? "an unknown address"), null)
      }
      return callback(null, socket)
    })
  }
}

/** The refusal of the connect-time guard in a client error's cause chain, described; undefined for other errors. */
export const blockedAtConnect = (error: HttpClientError.HttpClientError): string | undefined => {
  let current: unknown = error.reason
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    if (current instanceof DestinationNotAllowed) return current.message
    current = "cause" in current ? current.cause : undefined
  }
  return undefined
}

/**
 * The delivery worker's outbound client: undici (keep-alive pools; redirects are never followed), every new connection
 * through the connect-time guard (the port always; the address unless `WEBHOOK_ALLOW_PRIVATE_NETWORKS`). Pooled
 * connections were checked when they were opened, and a TCP connection cannot be rebound.
 */
export const DeliveryHttpClientLive: Layer.Layer<HttpClient.HttpClient, never, AppConfig> = Layer.unwrap(
  Effect.gen(function* () {
    const config = yield* AppConfig
    return NodeHttpClient.layerUndiciOptions({
      connect: guardedConnector(config.webhookAllowedPorts, config.webhookAllowPrivateNetworks)
    })
  })
)
