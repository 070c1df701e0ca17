/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/) as codex-api passes it on when it exports no traces of its
 * own: a version-00 `traceparent`, lower-case hex, neither id all zeros. Anything else is dropped, not repaired.
 */
const traceparentPattern = /^00-(?!0{32}-)[0-9a-f]{32}-(?!0{16}-)[0-9a-f]{16}-[0-9a-f]{2}$/

export const validTraceparent = (value: string | undefined): string | undefined =>
  value !== undefined && traceparentPattern.test(value) ? value : undefined

/**
 * The client of a request as TRUST_PROXY resolves it, when that is not the socket peer: set by the edge middleware on
 * the server span and turned into `client.address` when spans are written (layers/TracingLive.ts). Effect's tracer writes the socket
 * peer to `client.address` after the request ran, from the request it saw first, so nothing inside the application
 * can write that attribute itself.
 */
export const resolvedClientAttribute = "codex.client.resolved_address"
