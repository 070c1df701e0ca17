import { Schema } from "effect"
import { maskedPassword } from "./UrlCredentials.ts"

/** At most this many custom headers per endpoint, each value at most `maxHeaderValueLength` characters. */
export const maxHeaders = 20
export const maxHeaderValueLength = 1024

/** Names and values together, at most this many bytes (what a receiver's server accepts in all, with ours). */
export const maxHeadersBytes = 8192

/**
 * Headers an endpoint may not set: HTTP's own (hop-by-hop, framing, `host`), those codex-api sets on every delivery
 * (`content-type`, `user-agent`, `webhook-*`, the trace context) — a receiver must be able to trust them.
 */
const reserved: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
  "content-type",
  "content-encoding",
  "expect",
  "user-agent",
  "traceparent",
  "tracestate"
])

/** An HTTP field name (RFC 9110 token). */
const headerName = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/

/** Visible ASCII with spaces and tabs inside, never around, no control characters (so no CR/LF injection). */
const headerValue = /^[\x21-\x7E](?:[\x20-\x7E\t]*[\x21-\x7E])?$/

/**
 * Custom headers as a request carries them: names to values. The shape is checked here (strings, how many); what
 * HTTP and codex-api allow in them is `headersProblem`'s, answered 422 naming the header.
 */
export const EndpointHeaders = Schema.Record(Schema.String, Schema.String)
  .check(Schema.isMaxProperties(maxHeaders))
  .annotate({
    description:
      `Up to ${maxHeaders} headers sent with every delivery to the endpoint, e.g. credentials its receiver expects. ` +
      `Names are HTTP field names, values 1..${maxHeaderValueLength} visible ASCII characters; at most ` +
      `${maxHeadersBytes} bytes in all. Refused (422): hop-by-hop and framing headers, \`host\`, \`content-type\`, ` +
      "`user-agent`, `webhook-*` and the trace context, which codex-api sets itself. Stored encrypted; read back " +
      "with every value masked. On an update the given set replaces the previous one (`{}` removes them all).",
    examples: [{ Authorization: "Bearer sk_live_receiver", "X-Environment": "production" }]
  })

/** Why these headers cannot be sent, naming the first that cannot; undefined when they can. */
export const headersProblem = (headers: Readonly<Record<string, string>>): string | undefined => {
  const seen = new Set<string>()
  let bytes = 0
  for (const [name, value] of Object.entries(headers)) {
    if (!headerName.test(name)) return `"${name.slice(0, 80)}" is not an HTTP header name`
    const lower = name.toLowerCase()
    if (seen.has(lower)) return `the header "${name}" is given twice (names are case-insensitive)`
    seen.add(lower)
    if (reserved.has(lower) || lower.startsWith("webhook-")) {
      return `the header "${name}" cannot be set: codex-api or HTTP itself sets it`
    }
    if (value.length > maxHeaderValueLength || !headerValue.test(value)) {
      return `the value of "${name}" must be 1 to ${maxHeaderValueLength} visible ASCII characters (spaces inside)`
    }
    bytes += name.length + value.length + 4
  }
  return bytes > maxHeadersBytes ? `the headers take more than ${maxHeadersBytes} bytes` : undefined
}

/** What reading an endpoint shows of its headers: every name, every value masked. */
export const maskedHeaders = (names: ReadonlyArray<string>): Record<string, string> =>
  Object.fromEntries(names.map((name) => [name, maskedPassword]))
