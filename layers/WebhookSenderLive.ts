import { lookup as dnsLookup } from "node:dns"
import { isIP, type LookupFunction } from "node:net"
import { Agent, buildConnector, type Dispatcher } from "@effect/platform-node/Undici"
import { Duration, Effect, Layer } from "effect"
import { AppConfig } from "../services/AppConfig.ts"
import { SendFailed, type WebhookResponse, WebhookSender, type WebhookSenderShape } from "../services/WebhookSender.ts"
import { type AllowedPorts, isPortAllowed } from "../src/domain/AllowedPorts.ts"
import { responseExcerptBytes, storableExcerpt } from "../src/domain/Delivery.ts"
import { isPublicAddress } from "../src/domain/NetworkPolicy.ts"

/**
 * The connect-time guard refused a destination (an address, or a port). An `Error` because Node's and undici's
 * callbacks take one; the sender finds it in the error's cause chain and fails with `SendFailed` `blocked`.
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

/** The connect-time guard's refusal in an error's cause chain, described; undefined for other errors. */
export const blockedAtConnect = (error: unknown): string | undefined => {
  let current: unknown = error
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    if (current instanceof DestinationNotAllowed) return current.message
    current = "cause" in current ? current.cause : undefined
  }
  return undefined
}

/** `ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:1` — the Node or undici error code and message, never a stack. */
const describeError = (error: unknown): string => {
  const code =
    typeof error === "object" && error !== null && "code" in error && typeof error.code === "string" ? error.code : ""
  const message = error instanceof Error ? error.message : String(error)
  return `${code}${code === "" || message === "" ? "" : ": "}${message}`.slice(0, 1024)
}

const headerValue = (value: string | Array<string> | undefined): string | undefined =>
  Array.isArray(value) ? value[0] : value

/** Why a request was cut short on purpose (the caller's interruption, or an excerpt read in full). */
const requestAbandoned = new Error("request abandoned")

/**
 * The sender on an undici `Agent` (a keep-alive pool per origin; undici never follows redirects unless told to), every
 * new connection through the connect-time guard (the port always; the address unless
 * `WEBHOOK_ALLOW_PRIVATE_NETWORKS`). Pooled connections were checked when they were opened, and a TCP connection
 * cannot be rebound. One timer bounds the whole exchange. Undici's handler interface (`dispatch`) rather than its
 * promise API: no AbortController, body stream or promise chain per request, which halved the client's CPU per
 * request (140 → 76 µs on this machine). At most `responseExcerptBytes` of the answer are read, then the request is
 * aborted (the rest is never downloaded).
 */
export const makeWebhookSender = (agent: Agent): WebhookSenderShape => ({
  post: ({ url, headers, body, timeout }) =>
    Effect.callback<WebhookResponse, SendFailed>((resume) => {
      // Known once undici starts the request: until then a timeout or interruption is remembered, and applied then.
      let controller: Dispatcher.DispatchController | undefined
      let done = false
      let status = 0
      let retryAfter: string | undefined
      const chunks: Array<Buffer> = []
      let size = 0
      /** Ends the exchange once; false when it had ended already. */
      const end = (): boolean => {
        if (done) return false
        done = true
        clearTimeout(timer)
        return true
      }
      const settle = (effect: Effect.Effect<WebhookResponse, SendFailed>) => {
        if (end()) resume(effect)
      }
      /** Cuts the request short (a request that ended by itself, answered or failed, needs nothing of this). */
      const abandon = () => {
        if (controller !== undefined && !controller.aborted) controller.abort(requestAbandoned)
      }
      const answered = () =>
        settle(Effect.succeed({ status, retryAfter, excerpt: storableExcerpt(Buffer.concat(chunks, size)) }))
      const failed = (error: unknown) => {
        const blocked = blockedAtConnect(error)
        settle(
          Effect.fail(
            blocked === undefined
              ? new SendFailed({ reason: "network", detail: describeError(error) })
              : new SendFailed({ reason: "blocked", detail: blocked })
          )
        )
      }
      const timer = setTimeout(() => {
        settle(
          Effect.fail(
            new SendFailed({ reason: "timeout", detail: `no complete response within ${Duration.format(timeout)}` })
          )
        )
        abandon()
      }, Duration.toMillis(timeout))
      let target: URL
      try {
        target = new URL(url)
      } catch (error) {
        failed(error)
        return
      }
      const handler: Dispatcher.DispatchHandler = {
        onRequestStart: (started) => {
          controller = started
          if (done) started.abort(requestAbandoned)
        },
        onResponseStart: (_, statusCode, responseHeaders) => {
          status = statusCode
          retryAfter = headerValue(responseHeaders["retry-after"])
        },
        onResponseData: (_, chunk) => {
          if (done) return
          const take = chunk.subarray(0, responseExcerptBytes - size)
          chunks.push(take)
          size += take.length
          if (size >= responseExcerptBytes) {
            answered()
            abandon()
          }
        },
        onResponseEnd: answered,
        onResponseError: (_, error) => failed(error)
      }
      try {
        agent.dispatch(
          { origin: target.origin, path: `${target.pathname}${target.search}`, method: "POST", headers, body },
          handler
        )
      } catch (error) {
        failed(error)
      }
      return Effect.sync(() => {
        if (end()) abandon()
      })
    })
})

/** The worker's sender: its own undici agent with the connect-time guard, closed with the layer. */
export const WebhookSenderLive: Layer.Layer<WebhookSender, never, AppConfig> = Layer.effect(
  WebhookSender,
  Effect.gen(function* () {
    const config = yield* AppConfig
    const agent = yield* Effect.acquireRelease(
      Effect.sync(
        () => new Agent({ connect: guardedConnector(config.webhookAllowedPorts, config.webhookAllowPrivateNetworks) })
      ),
      (agent) => Effect.promise(() => agent.destroy())
    )
    return WebhookSender.of(makeWebhookSender(agent))
  })
)
