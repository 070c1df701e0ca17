import type { ServerOptions } from "node:http"
import { Duration } from "effect"

/** Whole milliseconds, at least 1: Node rejects fractions (and 0 would turn a timeout off). */
const wholeMillis = (duration: Duration.Duration): number => Math.max(1, Math.ceil(Duration.toMillis(duration)))

/**
 * The Node options behind HTTP_HEADERS_TIMEOUT, HTTP_REQUEST_TIMEOUT and HTTP_KEEP_ALIVE_TIMEOUT. Measured on Node
 * 24.21 (raw sockets; see the README, "Connections and timeouts"):
 * - A connection that never sends a byte counts against `headersTimeout` from its opening; one that sends headers
 *   slowly, from its request's first byte; a body that trickles in, against `requestTimeout` from that first byte.
 *   Node answers `408` and closes, but only when it checks, every `connectionsCheckingInterval` (default 30 s): with
 *   Node's defaults (60 s, 300 s) a silent connection lived 86.7 s on this server, and a trickling body up to 330 s
 *   (328 s in the issue). Checking every second (each check walks only the connections mid-request) makes the
 *   timeouts what they say.
 * - An idle keep-alive connection is closed `keepAliveTimeout` + 1 s (Node's `keepAliveTimeoutBuffer`) after the
 *   response; the idle time does not count against the next request's `headersTimeout`.
 * - `server.timeout` (socket inactivity) is left off: it cuts nothing a trickle keeps alive, and it would cut a
 *   quiet, legitimate response.
 * - `maxConnections`: a connection over the cap is closed at once, without a response, and Node emits `drop`.
 */
/** The listener's timeouts as configured (`HttpServerConfig` in services/AppConfig.ts). */
export interface ListenerTimeouts {
  readonly headersTimeout: Duration.Duration
  readonly requestTimeout: Duration.Duration
  readonly keepAliveTimeout: Duration.Duration
}

export const nodeServerOptions = (http: ListenerTimeouts) => {
  const headersTimeout = wholeMillis(http.headersTimeout)
  const requestTimeout = wholeMillis(http.requestTimeout)
  return {
    headersTimeout,
    requestTimeout,
    keepAliveTimeout: wholeMillis(http.keepAliveTimeout),
    // Every second, or a tenth of a shorter timeout (tests): a timeout is enforced at most this late.
    connectionsCheckingInterval: Math.min(1000, Math.max(10, Math.floor(Math.min(headersTimeout, requestTimeout) / 10)))
  } satisfies ServerOptions
}
