import { BlockList, isIP } from "node:net"

/**
 * Address ranges a webhook must never reach unless private networks are explicitly allowed (SSRF guard): loopback,
 * private (RFC 1918, unique-local), link-local (including the 169.254.169.254 cloud metadata address), CGNAT,
 * unspecified, multicast, reserved and documentation ranges.
 */
const nonPublic = new BlockList()
for (const [network, prefix] of [
  ["0.0.0.0", 8], // "this network"
  ["10.0.0.0", 8],
  ["100.64.0.0", 10], // CGNAT (also Alibaba's 100.100.100.200 metadata)
  ["127.0.0.0", 8],
  ["169.254.0.0", 16], // link-local, cloud metadata
  ["172.16.0.0", 12],
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.0.2.0", 24], // documentation
  ["192.168.0.0", 16],
  ["198.18.0.0", 15], // benchmarking
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4] // reserved, broadcast
] as const) {
  nonPublic.addSubnet(network, prefix, "ipv4")
}
for (const [network, prefix] of [
  ["::", 96], // unspecified, loopback and the deprecated IPv4-compatible ::a.b.c.d
  ["64:ff9b:1::", 48], // local-use NAT64 (RFC 8215); the well-known 64:ff9b::/96 is read as its IPv4 below
  ["fe80::", 10], // link-local
  ["fec0::", 10], // site-local (deprecated)
  ["fc00::", 7], // unique-local (AWS metadata fd00:ec2::254 is here)
  ["ff00::", 8], // multicast
  ["2001:db8::", 32], // documentation
  ["100::", 64] // discard-only
] as const) {
  nonPublic.addSubnet(network, prefix, "ipv6")
}

/** The IPv4 address carried inside an IPv4-mapped (::ffff:a.b.c.d) or NAT64 (64:ff9b::/96) IPv6 address. */
const embeddedIpv4 = (address: string): string | undefined => {
  const lower = address.toLowerCase()
  const dotted = /^(?:::ffff:|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower)
  if (dotted?.[1] !== undefined) return dotted[1]
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower)
  if (hex?.[1] === undefined || hex[2] === undefined) return undefined
  const high = Number.parseInt(hex[1], 16)
  const low = Number.parseInt(hex[2], 16)
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`
}

/** True for an IP literal that is safe to send webhooks to; false for non-public ranges and for non-IPs. */
export const isPublicAddress = (address: string): boolean => {
  const unbracketed = address.startsWith("[") && address.endsWith("]") ? address.slice(1, -1) : address
  const version = isIP(unbracketed)
  if (version === 4) return !nonPublic.check(unbracketed, "ipv4")
  if (version === 6) {
    const v4 = embeddedIpv4(unbracketed)
    if (v4 !== undefined) return isPublicAddress(v4)
    return !nonPublic.check(unbracketed, "ipv6")
  }
  return false
}
