/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/) as codex-api passes it on when it exports no traces of its
 * own: a version-00 `traceparent`, lower-case hex, neither id all zeros. Anything else is dropped, not repaired.
 */
const traceparentPattern = /^00-(?!0{32}-)[0-9a-f]{32}-(?!0{16}-)[0-9a-f]{16}-[0-9a-f]{2}$/

export const validTraceparent = (value: string | undefined): string | undefined =>
  value !== undefined && traceparentPattern.test(value) ? value : undefined
