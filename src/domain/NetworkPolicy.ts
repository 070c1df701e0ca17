import { ipv4Bytes, ipv6Bytes, samePrefix } from "./IpAddress.ts"

/**
 * Which addresses a webhook may reach unless private networks are explicitly allowed (the SSRF guard). Judged on the
 * address's bytes, so every spelling of one address gets one verdict. The save-time check, the check before each
 * attempt and the connect-time guard all ask `isPublicAddress`.
 */

type Range = readonly [network: Uint8Array, prefix: number]

const range = (bytes: Uint8Array | undefined, prefix: number): Range => [bytes ?? new Uint8Array(), prefix]
const v4 = (text: string, prefix: number): Range => range(ipv4Bytes(text), prefix)
const v6 = (text: string, prefix: number): Range => range(ipv6Bytes(text), prefix)

const inAny = (bytes: Uint8Array, ranges: ReadonlyArray<Range>): boolean =>
  ranges.some(([network, prefix]) => network.length === bytes.length && samePrefix(bytes, network, prefix))

/**
 * IPv4 ranges that are not globally reachable: the IANA IPv4 Special-Purpose Address Registry entries marked so, plus
 * multicast. The registry's globally reachable entries (192.0.0.9 and .10 anycast, AS112 192.31.196.0/24 and
 * 192.175.48.0/24, AMT 192.52.193.0/24) stay allowed, except inside 192.0.0.0/24, which is refused whole.
 */
const nonPublicIpv4: ReadonlyArray<Range> = [
  v4("0.0.0.0", 8), // "this network"
  v4("10.0.0.0", 8), // private-use
  v4("100.64.0.0", 10), // shared address space, CGNAT (also Alibaba's 100.100.100.200 metadata)
  v4("127.0.0.0", 8), // loopback
  v4("169.254.0.0", 16), // link-local, cloud metadata 169.254.169.254
  v4("172.16.0.0", 12), // private-use
  v4("192.0.0.0", 24), // IETF protocol assignments (DS-Lite, NAT64 discovery, ...)
  v4("192.0.2.0", 24), // documentation TEST-NET-1
  v4("192.88.99.0", 24), // deprecated 6to4 relay anycast (RFC 7526): a relay into IPv6 we cannot judge
  v4("192.168.0.0", 16), // private-use
  v4("198.18.0.0", 15), // benchmarking
  v4("198.51.100.0", 24), // documentation TEST-NET-2
  v4("203.0.113.0", 24), // documentation TEST-NET-3
  v4("224.0.0.0", 4), // multicast
  v4("240.0.0.0", 4) // reserved, and 255.255.255.255 limited broadcast
]

/**
 * IPv6 forms that carry an IPv4 address which is what the packet really reaches: judged by the IPv4 rules.
 * [prefix, where the IPv4 address sits (byte offset)].
 */
const carriers: ReadonlyArray<readonly [Range, number]> = [
  [v6("::ffff:0:0", 96), 12], // IPv4-mapped (RFC 4291)
  [v6("::ffff:0:0:0", 96), 12], // SIIT IPv4-translated (RFC 2765)
  [v6("64:ff9b::", 96), 12], // NAT64 well-known prefix (RFC 6052)
  [v6("2002::", 16), 2] // 6to4 (RFC 3056): the IPv4 address in bits 16-47
]

/** Global unicast (RFC 4291): the only IPv6 space IANA allocates to networks; everything outside it is refused. */
const globalUnicast = v6("2000::", 3)

/**
 * Not globally reachable inside global unicast (IANA IPv6 Special-Purpose Address Registry). 2001::/23 is refused
 * whole: besides benchmarking 2001:2::/48 and ORCHID 2001:10::/28 it holds Teredo 2001::/32, whose packets go over
 * UDP to IPv4 addresses encoded in the address (the server's, and the client's NAT, obfuscated), which we refuse
 * rather than decode: Teredo is out of service, and no webhook receiver needs it. The block's globally reachable
 * entries (anycast, AMT, AS112, ORCHIDv2, drone DETs) are no place for a receiver either.
 */
const nonPublicGlobalIpv6: ReadonlyArray<Range> = [
  v6("2001::", 23), // IETF protocol assignments, Teredo included
  v6("2001:db8::", 32), // documentation
  v6("3fff::", 20) // documentation (RFC 9637)
]

/**
 * The IPv4 address an IPv6 address stands for (IPv4-mapped, SIIT, NAT64, 6to4), or undefined. Outside global unicast
 * this is what keeps `::ffff:8.8.8.8` reachable while everything else there (loopback, unspecified, IPv4-compatible
 * `::a.b.c.d`, discard 100::/64, local NAT64 64:ff9b:1::/48, SRv6 5f00::/16, unique-local, link-local, site-local,
 * multicast) is refused.
 */
const embeddedIpv4 = (bytes: Uint8Array): Uint8Array | undefined => {
  for (const [carrier, offset] of carriers) {
    if (inAny(bytes, [carrier])) return bytes.slice(offset, offset + 4)
  }
  return undefined
}

const isPublicIpv4 = (bytes: Uint8Array): boolean => !inAny(bytes, nonPublicIpv4)

const isPublicIpv6 = (bytes: Uint8Array): boolean => {
  const carried = embeddedIpv4(bytes)
  if (carried !== undefined) return isPublicIpv4(carried)
  return inAny(bytes, [globalUnicast]) && !inAny(bytes, nonPublicGlobalIpv6)
}

/**
 * True for an IP literal that is safe to send webhooks to: IPv4 as a dotted quad, IPv6 in any text form, optionally
 * in brackets. False for non-public ranges and for anything that is not an IP address.
 */
export const isPublicAddress = (address: string): boolean => {
  const text = address.startsWith("[") && address.endsWith("]") ? address.slice(1, -1) : address
  const four = ipv4Bytes(text)
  if (four !== undefined) return isPublicIpv4(four)
  const six = ipv6Bytes(text)
  return six !== undefined && isPublicIpv6(six)
}
