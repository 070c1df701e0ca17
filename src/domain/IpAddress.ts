import { isIPv4, isIPv6 } from "node:net"

/**
 * IP address text to bytes (network order), so that rules about addresses compare bits, not spellings. Validation is
 * Node's own (`net.isIPv4`/`isIPv6`, what sockets accept); these functions only convert what it accepts.
 */

/** The 4 bytes of a dotted quad (`127.0.0.1`); undefined for anything else, including `127.1` or `0x7f.0.0.1`. */
export const ipv4Bytes = (text: string): Uint8Array | undefined =>
  isIPv4(text) ? Uint8Array.from(text.split(".").map(Number)) : undefined

const hextets = (part: string): Array<string> => (part === "" ? [] : part.split(":"))

/**
 * The 16 bytes of any IPv6 text: compressed or full, leading zeros or not, any case, an embedded dotted quad at the
 * end (`::ffff:127.0.0.1`, `64:ff9b::10.0.0.1`), a zone (`fe80::1%eth0`, dropped). Undefined for anything else.
 */
export const ipv6Bytes = (raw: string): Uint8Array | undefined => {
  if (!isIPv6(raw)) return undefined
  const zone = raw.indexOf("%")
  const text = zone === -1 ? raw : raw.slice(0, zone)
  const gap = text.indexOf("::")
  const left = hextets(gap === -1 ? text : text.slice(0, gap))
  const right = gap === -1 ? [] : hextets(text.slice(gap + 2))
  const tail = gap === -1 ? left : right
  const last = tail[tail.length - 1]
  if (last?.includes(".")) {
    const quad = last.split(".").map(Number)
    tail.splice(tail.length - 1, 1, (((quad[0] ?? 0) << 8) | (quad[1] ?? 0)).toString(16))
    tail.push((((quad[2] ?? 0) << 8) | (quad[3] ?? 0)).toString(16))
  }
  const groups = [...left, ...new Array<string>(gap === -1 ? 0 : 8 - left.length - right.length).fill("0"), ...right]
  if (groups.length !== 8) return undefined
  const bytes = new Uint8Array(16)
  groups.forEach((group, i) => {
    const value = Number.parseInt(group, 16)
    bytes[2 * i] = value >> 8
    bytes[2 * i + 1] = value & 0xff
  })
  return bytes
}

/** Whether the first `prefix` bits of `a` and `b` are equal (arrays of the same length assumed). */
export const samePrefix = (a: Uint8Array, b: Uint8Array, prefix: number): boolean => {
  const whole = prefix >> 3
  for (let i = 0; i < whole; i++) if (a[i] !== b[i]) return false
  const rest = prefix & 7
  if (rest === 0) return true
  const mask = (0xff << (8 - rest)) & 0xff
  return ((a[whole] ?? 0) & mask) === ((b[whole] ?? 0) & mask)
}
