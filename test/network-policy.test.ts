import { isIPv6 } from "node:net"
import { assert, describe, expect, it } from "@effect/vitest"
import { isPublicAddress } from "../src/domain/NetworkPolicy.ts"
import {
  anyIpv4,
  filler,
  inRefusedIpv4,
  ipv4Text,
  ipv6Spellings,
  rangeBounds,
  refusedIpv4,
  refusedIpv4Ranges,
  spellingIndex,
  transitionBytes,
  transitionKind,
  transitionKinds
} from "./support/addresses.ts"

/**
 * The classifier behind all three SSRF checks (save time, before each attempt, connect time), on tables of addresses
 * and on generated ones. The expected verdicts come from the test's own copy of the IANA ranges (test/support).
 */

describe("isPublicAddress: IPv4", () => {
  it.each(refusedIpv4Ranges)("refuses %s/%d (%s) from its first to its last address", (...range) => {
    const [first, last] = rangeBounds(range)
    for (const n of [first, first + 1, Math.floor((first + last) / 2), last - 1, last]) {
      expect(isPublicAddress(ipv4Text(n)), ipv4Text(n)).toBe(false)
    }
  })

  it("allows the addresses just outside each range, unless another range holds them", () => {
    for (const range of refusedIpv4Ranges) {
      const [first, last] = rangeBounds(range)
      for (const n of [first - 1, last + 1]) {
        if (n < 0 || n > 2 ** 32 - 1) continue
        expect(isPublicAddress(ipv4Text(n)), ipv4Text(n)).toBe(!inRefusedIpv4(n))
      }
    }
  })

  it.each([
    "93.184.216.34",
    "8.8.8.8",
    "1.1.1.1",
    "172.32.0.1",
    "100.128.0.1",
    "192.0.1.255",
    "192.31.196.1", // AS112, globally reachable
    "192.52.193.1", // AMT, globally reachable
    "192.175.48.1", // AS112 direct delegation, globally reachable
    "223.255.255.255"
  ])("allows %s", (address) => {
    expect(isPublicAddress(address)).toBe(true)
  })

  it.each([
    "127.1",
    "0x7f.0.0.1",
    "017700000001",
    "2130706433",
    "127.0.0.1.",
    "010.0.0.1",
    "",
    "not-an-ip",
    "[1.1.1.1"
  ])("refuses %s: not an address in the form sockets and DNS answers use", (text) => {
    expect(isPublicAddress(text)).toBe(false)
  })

  it.prop("agrees with the test's own copy of the registry on any IPv4 address", [anyIpv4], ([n]) => {
    assert.strictEqual(isPublicAddress(ipv4Text(n)), !inRefusedIpv4(n), ipv4Text(n))
  })
})

describe("isPublicAddress: IPv6", () => {
  it.each([
    ["::1", "loopback"],
    ["0:0:0:0:0:0:0:1", "loopback, full form"],
    ["[::1]", "loopback, bracketed"],
    ["::", "unspecified"],
    ["::127.0.0.1", "IPv4-compatible (deprecated)"],
    ["::8.8.8.8", "IPv4-compatible of a public address: deprecated, refused whole"],
    ["fc00::1", "unique-local"],
    ["fd12:3456::1", "unique-local"],
    ["fd00:ec2::254", "AWS metadata"],
    ["fe80::1", "link-local"],
    ["fe80::1%eth0", "link-local with a zone"],
    ["fec0::1", "site-local (deprecated)"],
    ["ff02::1", "multicast"],
    ["ff0e::1", "global-scope multicast"],
    ["100::1", "discard-only 100::/64"],
    ["100:0:0:1::1", "dummy prefix 100:0:0:1::/64"],
    ["64:ff9b:1::a00:1", "local-use NAT64 64:ff9b:1::/48"],
    ["5f00::1", "SRv6 SIDs 5f00::/16"],
    ["2001:db8::1", "documentation 2001:db8::/32"],
    ["3fff::1", "documentation 3fff::/20"],
    ["3fff:fff:ffff::1", "documentation 3fff::/20, last block"],
    ["2001:2::1", "benchmarking 2001:2::/48"],
    ["2001:10::1", "ORCHID 2001:10::/28"],
    ["2001:20::1", "ORCHIDv2 2001:20::/28"],
    ["2001:1::1", "PCP anycast, in 2001::/23"],
    ["2001:1ff:ffff::1", "the end of 2001::/23"],
    ["2001:0:808:808:0:0:f7f7:f7f7", "Teredo, public server and client: Teredo is refused whole"],
    ["2001:0:7f00:1::", "Teredo, server 127.0.0.1"],
    ["::ffff:127.0.0.1", "IPv4-mapped loopback"],
    ["::ffff:7f00:1", "IPv4-mapped loopback, hex"],
    ["0:0:0:0:0:ffff:7f00:1", "IPv4-mapped loopback, full form"],
    ["0000:0000:0000:0000:0000:FFFF:7F00:0001", "IPv4-mapped loopback, padded, upper case"],
    ["::ffff:10.1.2.3", "IPv4-mapped private"],
    ["::ffff:0:7f00:1", "SIIT loopback"],
    ["::ffff:0:169.254.169.254", "SIIT metadata, dotted quad"],
    ["0:0:0:0:ffff:0:a00:1", "SIIT private, full form"],
    ["64:ff9b::a9fe:a9fe", "NAT64 metadata"],
    ["64:ff9b::127.0.0.1", "NAT64 loopback, dotted quad"],
    ["64:ff9b:0:0:0:0:7f00:1", "NAT64 loopback, full form (slipped through the old regex)"],
    ["64:FF9B::A00:1", "NAT64 private, upper case"],
    ["2002:7f00:1::", "6to4 of 127.0.0.1"],
    ["2002:a9fe:a9fe::1", "6to4 of the metadata address"],
    ["2002:c0a8:101:0:0:0:0:1", "6to4 of 192.168.1.1, full form"],
    ["not-an-ip", "not an address"],
    ["[::1", "half a bracket"]
  ])("refuses %s (%s)", (address) => {
    expect(isPublicAddress(address)).toBe(false)
  })

  it.each([
    ["2606:4700:4700::1111", "Cloudflare DNS"],
    ["2a00:1450:4001:82b::200e", "a Google address"],
    ["2001:200::1", "the first RIR allocation after 2001::/23"],
    ["2001:db9::1", "just past documentation 2001:db8::/32"],
    ["3ffe::1", "old 6bone space, now ordinary global unicast"],
    ["3fff:1000::1", "just past documentation 3fff::/20"],
    ["::ffff:8.8.8.8", "IPv4-mapped public"],
    ["0:0:0:0:0:ffff:808:808", "IPv4-mapped public, full form"],
    ["::ffff:0:8.8.8.8", "SIIT public"],
    ["64:ff9b::8.8.8.8", "NAT64 public"],
    ["64:ff9b:0:0:0:0:808:808", "NAT64 public, full form"],
    ["2002:5db8:d822::1", "6to4 of 93.184.216.34"],
    ["[2606:4700:4700::1111]", "bracketed"]
  ])("allows %s (%s)", (address) => {
    expect(isPublicAddress(address)).toBe(true)
  })
})

describe("isPublicAddress: IPv4 carried in IPv6, every spelling", () => {
  it("the spellings are valid IPv6 text, and the URL parser reads each as the same address", () => {
    for (const kind of transitionKinds) {
      const bytes = transitionBytes(
        kind,
        0x7f000001,
        Array.from({ length: 16 }, (_, i) => i * 17)
      )
      const spellings = ipv6Spellings(bytes)
      expect(spellings.length).toBeGreaterThanOrEqual(6)
      const canonical = new Set(spellings.map((text) => new URL(`https://[${text}]/`).hostname))
      expect(canonical.size, `${kind}: ${spellings.join(" ")}`).toBe(1)
      for (const text of spellings) expect(isIPv6(text), text).toBe(true)
    }
  })

  it.prop(
    "a non-public IPv4 target is refused in every transition form and spelling",
    [refusedIpv4, transitionKind, filler],
    ([v4, kind, free]) => {
      for (const text of ipv6Spellings(transitionBytes(kind, v4, free))) {
        assert.isFalse(isPublicAddress(text), `${kind} of ${ipv4Text(v4)}: ${text}`)
        assert.isFalse(isPublicAddress(`[${text}]`), `${kind} of ${ipv4Text(v4)}: [${text}]`)
      }
    },
    { arbitrary: { runs: 300 } }
  )

  it.prop(
    "any IPv4 address: mapped, SIIT, NAT64 and 6to4 get the IPv4 verdict, Teredo is always refused",
    [anyIpv4, transitionKind, filler, spellingIndex],
    ([v4, kind, free, index]) => {
      const spellings = ipv6Spellings(transitionBytes(kind, v4, free))
      const text = spellings[index % spellings.length] ?? ""
      const expected = kind.startsWith("teredo") ? false : !inRefusedIpv4(v4)
      assert.strictEqual(isPublicAddress(text), expected, `${kind} of ${ipv4Text(v4)}: ${text}`)
    },
    { arbitrary: { runs: 500 } }
  )
})
