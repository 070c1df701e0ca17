import { Brand } from "effect"

/**
 * JSON as the client wrote it. `JSON.parse` loses what a webhook service must deliver unchanged: member order
 * (integer-like keys jump ahead), number text (`2.50`, `1.0E+2`, `12345678901234567890123`) and string escapes
 * (`"\u00e9"`, `"\/"`). This module reads the text itself, in one pass with an explicit stack (any depth is safe):
 *
 * - `scanJson` checks the RFC 8259 grammar (the same documents `JSON.parse` accepts), finds duplicate member names at
 *   every level (I-JSON, RFC 7493 §2.3, refuses them; `JSON.parse` would keep the last one silently), and records
 *   where each top-level member's value is;
 * - `minifyJson` drops the insignificant whitespace and keeps every other character as sent.
 */

/** Minified JSON text, exactly as sent otherwise: stored, delivered and returned without being parsed again. */
export type JsonText = string & Brand.Brand<"JsonText">
export const JsonText = Brand.nominal<JsonText>()

/** `[start, end)` offsets in the scanned text. */
export interface Span {
  readonly start: number
  readonly end: number
}

export type JsonScan =
  /** Not JSON: left to the decoder, which reports it as it always has. */
  | { readonly _tag: "Invalid" }
  /** JSON, but `path` leads to the second member of a name (object keys and array indexes, from the top). */
  | { readonly _tag: "DuplicateName"; readonly path: ReadonlyArray<string | number> }
  /** `members`: the value span of each top-level member, when the document is an object (else empty). */
  | { readonly _tag: "Valid"; readonly members: ReadonlyMap<string, Span> }

const QUOTE = 0x22
const BACKSLASH = 0x5c
const COMMA = 0x2c
const COLON = 0x3a
const LBRACE = 0x7b
const RBRACE = 0x7d
const LBRACKET = 0x5b
const RBRACKET = 0x5d
const MINUS = 0x2d
const PLUS = 0x2b
const DOT = 0x2e
const ZERO = 0x30
const NINE = 0x39

const isWhitespace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09
const isDigit = (c: number): boolean => c >= ZERO && c <= NINE
const isHexDigit = (c: number): boolean =>
  (c >= ZERO && c <= NINE) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)

const skipWhitespace = (text: string, i: number): number => {
  while (i < text.length && isWhitespace(text.charCodeAt(i))) i++
  return i
}

/** The end (after the closing quote) of the string opening at `i`, or -1 when it is not a valid JSON string. */
const stringEnd = (text: string, i: number): number => {
  for (let j = i + 1; j < text.length; j++) {
    const c = text.charCodeAt(j)
    if (c === QUOTE) return j + 1
    if (c < 0x20) return -1
    if (c === BACKSLASH) {
      const e = text.charCodeAt(++j)
      if (e === 0x75) {
        for (let k = 0; k < 4; k++) if (!isHexDigit(text.charCodeAt(++j))) return -1
      } else if (
        // " \ / b f n r t
        e !== QUOTE &&
        e !== BACKSLASH &&
        e !== 0x2f &&
        e !== 0x62 &&
        e !== 0x66 &&
        e !== 0x6e &&
        e !== 0x72 &&
        e !== 0x74
      ) {
        return -1
      }
    }
  }
  return -1
}

const digitsEnd = (text: string, i: number): number => {
  while (i < text.length && isDigit(text.charCodeAt(i))) i++
  return i
}

/** The end of the number starting at `i` (`-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?`), or -1. */
const numberEnd = (text: string, i: number): number => {
  if (text.charCodeAt(i) === MINUS) i++
  const first = text.charCodeAt(i)
  if (first === ZERO) i++
  else if (isDigit(first)) i = digitsEnd(text, i + 1)
  else return -1
  if (text.charCodeAt(i) === DOT) {
    const end = digitsEnd(text, i + 1)
    if (end === i + 1) return -1
    i = end
  }
  const e = text.charCodeAt(i)
  if (e === 0x65 || e === 0x45) {
    i++
    const sign = text.charCodeAt(i)
    if (sign === PLUS || sign === MINUS) i++
    const end = digitsEnd(text, i)
    if (end === i) return -1
    i = end
  }
  return i
}

const simpleEscapes: Readonly<Record<string, string>> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t"
}

/** The value of the (valid) string literal `text[start, end)`: what duplicate names are compared by. */
const stringValue = (text: string, start: number, end: number): string => {
  const body = text.slice(start + 1, end - 1)
  if (!body.includes("\\")) return body
  let out = ""
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as string
    if (c !== "\\") {
      out += c
      continue
    }
    const e = body[++i] as string
    if (e === "u") {
      out += String.fromCharCode(Number.parseInt(body.slice(i + 1, i + 5), 16))
      i += 4
    } else {
      out += simpleEscapes[e] ?? e
    }
  }
  return out
}

/** An object being read: the names seen so far and the current member's. */
interface ObjectFrame {
  readonly names: Set<string>
  name: string
}

/** An array being read: the current element's index. */
interface ArrayFrame {
  readonly names: undefined
  index: number
}

type Frame = ObjectFrame | ArrayFrame

const pathSegment = (frame: Frame): string | number => (frame.names === undefined ? frame.index : frame.name)

const invalid: JsonScan = { _tag: "Invalid" }

/**
 * One pass over `text`: is it JSON (RFC 8259, as `JSON.parse` reads it), its first duplicate member name if any, and
 * the value spans of its top-level members. See the module comment.
 */
export const scanJson = (text: string): JsonScan => {
  const frames: Array<Frame> = []
  const members = new Map<string, Span>()
  let memberStart = 0
  // The first duplicate name; reported only once the whole text is known to be JSON.
  let duplicate: ReadonlyArray<string | number> | undefined
  // The object whose member's name comes next, i.e. after `{` or after `,` in an object.
  let naming: ObjectFrame | undefined
  let i = skipWhitespace(text, 0)

  for (;;) {
    if (naming !== undefined) {
      // `"name" :` at `i`.
      const end = text.charCodeAt(i) === QUOTE ? stringEnd(text, i) : -1
      if (end === -1) return invalid
      const name = stringValue(text, i, end)
      if (naming.names.has(name)) duplicate ??= [...frames.slice(0, -1).map(pathSegment), name]
      naming.names.add(name)
      naming.name = name
      naming = undefined
      i = skipWhitespace(text, end)
      if (text.charCodeAt(i) !== COLON) return invalid
      i = skipWhitespace(text, i + 1)
      if (frames.length === 1) memberStart = i
    }

    // A value starts at `i`.
    const c = text.charCodeAt(i)
    if (c === LBRACE || c === LBRACKET) {
      const object = c === LBRACE
      i = skipWhitespace(text, i + 1)
      if (text.charCodeAt(i) === (object ? RBRACE : RBRACKET)) {
        i++
      } else {
        if (object) {
          naming = { names: new Set(), name: "" }
          frames.push(naming)
        } else {
          frames.push({ names: undefined, index: 0 })
        }
        continue
      }
    } else if (c === QUOTE) {
      i = stringEnd(text, i)
    } else if (c === MINUS || isDigit(c)) {
      i = numberEnd(text, i)
    } else if (text.startsWith("true", i) || text.startsWith("null", i)) {
      i += 4
    } else if (text.startsWith("false", i)) {
      i += 5
    } else {
      return invalid
    }
    if (i === -1) return invalid

    // The value ended at `i`: a separator, or the end of its container(s), or of the document.
    for (;;) {
      const frame = frames.at(-1)
      if (frame === undefined) {
        if (skipWhitespace(text, i) !== text.length) return invalid
        return duplicate === undefined ? { _tag: "Valid", members } : { _tag: "DuplicateName", path: duplicate }
      }
      if (frames.length === 1 && frame.names !== undefined) {
        members.set(frame.name, { start: memberStart, end: i })
      }
      i = skipWhitespace(text, i)
      const next = text.charCodeAt(i)
      if (next === COMMA) {
        i = skipWhitespace(text, i + 1)
        if (frame.names === undefined) frame.index++
        else naming = frame
        break
      }
      if (next !== (frame.names !== undefined ? RBRACE : RBRACKET)) return invalid
      frames.pop()
      i++
    }
  }
}

/**
 * `text[start, end)` without the whitespace between tokens; strings, numbers and literals are kept character for
 * character. Defined for any text (what is inside quotes is kept), so it can also fingerprint a body that is not JSON.
 */
export const minifyJson = (text: string, start = 0, end = text.length): string => {
  let out = ""
  let from = start
  let i = start
  while (i < end) {
    const c = text.charCodeAt(i)
    if (c === QUOTE) {
      i++
      while (i < end) {
        const s = text.charCodeAt(i)
        i += s === BACKSLASH ? 2 : 1
        if (s === QUOTE) break
      }
    } else if (isWhitespace(c)) {
      out += text.slice(from, i)
      while (i < end && isWhitespace(text.charCodeAt(i))) i++
      from = i
    } else {
      i++
    }
  }
  return from === start ? text.slice(start, end) : out + text.slice(from, end)
}
