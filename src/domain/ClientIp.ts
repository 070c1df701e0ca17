import { isIPv4, isIPv6 } from "node:net"
import { ipv6Bytes, samePrefix } from "./IpAddress.ts"

/**
 * Who the client is, for rate limiting and the access log: pure functions, no I/O. The socket address unless
 * TRUST_PROXY says which proxies in front of us may speak for the client through `X-Forwarded-For`; the leftmost
 * entry of that header is whatever the client wrote, so it is never believed on its own.
 */

/** Who sits in front of the server (`TRUST_PROXY`): how the client IP is found. */
export type TrustProxy =
  | { readonly _tag: "None" }
  | { readonly _tag: "Hops"; readonly hops: number }
  | { readonly _tag: "Cidrs"; readonly cidrs: ReadonlyArray<string> }

export interface Ip {
  readonly version: 4 | 6
  /** 4 or 16 bytes, network order. */
  readonly bytes: Uint8Array
}

export interface Cidr extends Ip {
  readonly prefix: number
}

const isV4Mapped = (bytes: Uint8Array): boolean =>
  bytes.length === 16 && bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff

/**
 * Parses an address as sockets and proxies write it: IPv4, IPv6 (with or without a zone), `[v6]:port`,
 * `v4:port`. IPv4-mapped IPv6 (`::ffff:1.2.3.4`, what a dual-stack socket reports for IPv4 clients) becomes the IPv4
 * address, so one client has one identity. Anything else is `undefined`.
 */
export const parseIp = (raw: string): Ip | undefined => {
  let text = raw.trim()
  if (text.startsWith("[")) {
    const end = text.indexOf("]")
    if (end === -1) return undefined
    text = text.slice(1, end)
  } else if (text.includes(".") && text.indexOf(":") !== -1 && text.indexOf(":") === text.lastIndexOf(":")) {
    text = text.slice(0, text.indexOf(":"))
  }
  const zone = text.indexOf("%")
  if (zone !== -1) text = text.slice(0, zone)
  if (isIPv4(text)) return { version: 4, bytes: Uint8Array.from(text.split(".").map(Number)) }
  if (!isIPv6(text)) return undefined
  const bytes = ipv6Bytes(text)
  if (bytes === undefined) return undefined
  return isV4Mapped(bytes) ? { version: 4, bytes: bytes.slice(12) } : { version: 6, bytes }
}

/** Dotted quad, or RFC 5952 IPv6 text (lower case, the longest run of two or more zero groups as `::`). */
export const formatIp = (ip: Ip): string => {
  if (ip.version === 4) return ip.bytes.join(".")
  const groups = Array.from({ length: 8 }, (_, i) => ((ip.bytes[2 * i] ?? 0) << 8) | (ip.bytes[2 * i + 1] ?? 0))
  let best = -1
  let bestLength = 1
  for (let i = 0; i < 8; ) {
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLength) {
      best = i
      bestLength = j - i
    }
    i = j === i ? i + 1 : j
  }
  const hex = groups.map((g) => g.toString(16))
  if (best === -1) return hex.join(":")
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLength).join(":")}`
}

/** `10.0.0.0/8`, `fd00::/8`, or a bare address (a /32 or /128). IPv4-mapped ranges become IPv4 ranges. */
export const parseCidr = (raw: string): Cidr | undefined => {
  const slash = raw.indexOf("/")
  const address = slash === -1 ? raw.trim() : raw.slice(0, slash).trim()
  const ip = parseIp(address)
  if (ip === undefined || address.startsWith("[")) return undefined
  const fullLength = isIPv6(address) ? 128 : 32
  if (slash === -1) return { ...ip, prefix: ip.version === 4 ? 32 : 128 }
  const prefixText = raw.slice(slash + 1).trim()
  if (!/^\d{1,3}$/.test(prefixText)) return undefined
  const prefix = Number(prefixText)
  if (prefix > fullLength) return undefined
  if (ip.version === 4 && fullLength === 128) {
    // ::ffff:10.0.0.0/104 is 10.0.0.0/8.
    return prefix < 96 ? undefined : { ...ip, prefix: prefix - 96 }
  }
  return { ...ip, prefix }
}

export const inCidr = (ip: Ip, cidr: Cidr): boolean =>
  ip.version === cidr.version && samePrefix(ip.bytes, cidr.bytes, cidr.prefix)

/** TRUST_PROXY, ready to use: the CIDRs parsed once at startup. */
export type ProxyTrust =
  | { readonly _tag: "None" }
  | { readonly _tag: "Hops"; readonly hops: number }
  | { readonly _tag: "Cidrs"; readonly cidrs: ReadonlyArray<Cidr> }

/**
 * TRUST_PROXY's value: empty = trust no proxy; a whole number = that many proxies in front of us (0 = none); else a
 * comma-separated list of proxy addresses or CIDRs. `true` (trust every hop, i.e. believe the leftmost
 * X-Forwarded-For entry) is refused on purpose. A string is an error message.
 */
export const parseTrustProxy = (raw: string): TrustProxy | string => {
  const value = raw.trim()
  if (value === "" || value === "false") return { _tag: "None" }
  if (/^\d+$/.test(value)) {
    const hops = Number(value)
    if (hops > 32) return "a hop count must be between 0 and 32"
    return hops === 0 ? { _tag: "None" } : { _tag: "Hops", hops }
  }
  const items = value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
  const bad = items.find((item) => parseCidr(item) === undefined)
  if (bad !== undefined || items.length === 0) {
    return `expected a hop count or a comma-separated list of IP addresses/CIDRs${bad === undefined ? "" : ` (not one: ${bad})`}`
  }
  return { _tag: "Cidrs", cidrs: items }
}

export const compileTrust = (trust: TrustProxy): ProxyTrust => {
  switch (trust._tag) {
    case "None":
    case "Hops":
      return trust
    case "Cidrs":
      return { _tag: "Cidrs", cidrs: trust.cidrs.flatMap((c) => parseCidr(c) ?? []) }
  }
}

/**
 * The client's address. Without trust: the socket peer. With `Hops(n)`: walking `X-Forwarded-For` from the right,
 * the address n hops away (fewer entries: the furthest). With CIDRs: walking from the right while the current hop is
 * a trusted proxy, the first address that is not. An unparsable entry ends the walk at the hop that forwarded it.
 */
export const resolveClientIp = (
  remoteAddress: string | undefined,
  forwardedFor: string | undefined,
  trust: ProxyTrust
): Ip | undefined => {
  let client = remoteAddress === undefined ? undefined : parseIp(remoteAddress)
  if (client === undefined || trust._tag === "None" || forwardedFor === undefined) return client
  const entries = forwardedFor.split(",")
  let index = entries.length - 1
  if (trust._tag === "Hops") {
    for (let hop = 0; hop < trust.hops && index >= 0; hop++, index--) {
      const next = parseIp(entries[index] ?? "")
      if (next === undefined) break
      client = next
    }
    return client
  }
  const trusted = (ip: Ip) => trust.cidrs.some((cidr) => inCidr(ip, cidr))
  while (index >= 0 && trusted(client)) {
    const next = parseIp(entries[index--] ?? "")
    if (next === undefined) break
    client = next
  }
  return client
}

/**
 * The rate-limit identity of an address: an IPv4 address as is, an IPv6 address by its /56 prefix (what one
 * subscriber usually gets), so hopping between addresses of one allocation does not buy a fresh quota.
 */
export const ipBucket = (ip: Ip): string => {
  if (ip.version === 4) return formatIp(ip)
  const masked = new Uint8Array(16)
  masked.set(ip.bytes.subarray(0, 7))
  return `${formatIp({ version: 6, bytes: masked })}/56`
}
