import { assert, describe, it } from "@effect/vitest"
import type { TrustProxy } from "../services/AppConfig.ts"
import {
  compileTrust,
  formatIp,
  ipBucket,
  parseCidr,
  parseIp,
  parseTrustProxy,
  resolveClientIp
} from "../src/domain/ClientIp.ts"

const text = (raw: string): string | undefined => {
  const ip = parseIp(raw)
  return ip === undefined ? undefined : formatIp(ip)
}

const trust = (raw: string) => {
  const parsed = parseTrustProxy(raw)
  if (typeof parsed === "string") throw new Error(parsed)
  return compileTrust(parsed)
}

const client = (remote: string | undefined, xff: string | undefined, trustProxy = "") => {
  const ip = resolveClientIp(remote, xff, trust(trustProxy))
  return ip === undefined ? undefined : formatIp(ip)
}

describe("parseIp / formatIp", () => {
  it.each([
    ["1.2.3.4", "1.2.3.4"],
    [" 10.0.0.1 ", "10.0.0.1"],
    ["::ffff:1.2.3.4", "1.2.3.4"],
    ["::FFFF:7f00:1", "127.0.0.1"],
    ["0:0:0:0:0:ffff:c0a8:0101", "192.168.1.1"],
    ["::1", "::1"],
    ["2001:DB8:0:0:0:0:0:1", "2001:db8::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["fe80::1%eth0", "fe80::1"],
    ["[2001:db8::5]:443", "2001:db8::5"],
    ["203.0.113.7:5678", "203.0.113.7"],
    ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
    ["::", "::"]
  ])("%s → %s", (raw, expected) => assert.strictEqual(text(raw), expected))

  it.each([["unknown"], [""], ["1.2.3"], ["256.1.1.1"], ["1.2.3.4.5"], ["2001:db8::g"], ["[::1"], ["_hidden"]])(
    "%j is not an address",
    (raw) => assert.isUndefined(parseIp(raw))
  )
})

describe("ipBucket", () => {
  it("keys IPv4 by the address", () => {
    assert.strictEqual(ipBucket(parseIp("198.51.100.23") ?? assert.fail()), "198.51.100.23")
    assert.notStrictEqual(
      ipBucket(parseIp("198.51.100.23") ?? assert.fail()),
      ipBucket(parseIp("198.51.100.24") ?? assert.fail())
    )
  })

  it("keys IPv6 by its /56: rotating inside it changes nothing, the next /56 is another bucket", () => {
    const bucket = (raw: string) => ipBucket(parseIp(raw) ?? assert.fail(raw))
    assert.strictEqual(bucket("2001:db8:aa:bb00::1"), "2001:db8:aa:bb00::/56")
    assert.strictEqual(bucket("2001:db8:aa:bbff:ffff:ffff:ffff:ffff"), "2001:db8:aa:bb00::/56")
    assert.strictEqual(bucket("2001:db8:aa:bb12:1234:5678:9abc:def0"), "2001:db8:aa:bb00::/56")
    assert.notStrictEqual(bucket("2001:db8:aa:bc00::1"), "2001:db8:aa:bb00::/56")
  })

  it("keys an IPv4-mapped address like the IPv4 address", () =>
    assert.strictEqual(ipBucket(parseIp("::ffff:198.51.100.23") ?? assert.fail()), "198.51.100.23"))
})

describe("parseTrustProxy / parseCidr", () => {
  it.each<[string, TrustProxy]>([
    ["", { _tag: "None" }],
    ["0", { _tag: "None" }],
    ["false", { _tag: "None" }],
    ["2", { _tag: "Hops", hops: 2 }],
    ["10.0.0.0/8, 192.168.1.1", { _tag: "Cidrs", cidrs: ["10.0.0.0/8", "192.168.1.1"] }],
    ["fd00::/8", { _tag: "Cidrs", cidrs: ["fd00::/8"] }]
  ])("%j", (raw, expected) => assert.deepStrictEqual(parseTrustProxy(raw), expected))

  it.each([["true"], ["*"], ["10.0.0.0/33"], ["fd00::/129"], ["10.0.0.0/8,nope"], ["-1"], ["99"], [","]])(
    "%j is refused",
    (raw) => assert.isString(parseTrustProxy(raw))
  )

  it("maps IPv4-mapped ranges to IPv4 ranges", () =>
    assert.deepStrictEqual(parseCidr("::ffff:10.0.0.0/104"), parseCidr("10.0.0.0/8")))
})

describe("resolveClientIp", () => {
  it("without TRUST_PROXY: the socket address, whatever X-Forwarded-For says", () => {
    assert.strictEqual(client("127.0.0.1", "6.6.6.6"), "127.0.0.1")
    assert.strictEqual(client("::ffff:127.0.0.1", "6.6.6.6, 7.7.7.7"), "127.0.0.1")
    assert.strictEqual(client("2001:db8::1", undefined), "2001:db8::1")
    assert.isUndefined(client(undefined, "6.6.6.6"))
  })

  it("a hop count takes the address that many hops from the right, never a spoofed leftmost one", () => {
    // client → LB (appends 203.0.113.9) → us; the client spoofed 6.6.6.6 first.
    assert.strictEqual(client("10.0.0.2", "6.6.6.6, 203.0.113.9", "1"), "203.0.113.9")
    // two proxies: the CDN appended the client, the LB appended the CDN.
    assert.strictEqual(client("10.0.0.2", "6.6.6.6, 203.0.113.9, 198.51.100.1", "2"), "203.0.113.9")
    // fewer entries than hops: the furthest one there is
    assert.strictEqual(client("10.0.0.2", "203.0.113.9", "3"), "203.0.113.9")
    assert.strictEqual(client("10.0.0.2", undefined, "1"), "10.0.0.2")
  })

  it("CIDRs: walks from the right past trusted proxies to the first untrusted address", () => {
    const proxies = "10.0.0.0/8, 192.168.0.0/16"
    assert.strictEqual(client("10.0.0.2", "6.6.6.6, 203.0.113.9, 192.168.5.5", proxies), "203.0.113.9")
    // the socket peer is not a trusted proxy: its header is not believed
    assert.strictEqual(client("198.51.100.7", "6.6.6.6", proxies), "198.51.100.7")
    // every hop trusted: the leftmost, which a trusted proxy vouched for
    assert.strictEqual(client("10.0.0.2", "10.9.9.9", proxies), "10.9.9.9")
    assert.strictEqual(client("::ffff:10.0.0.2", "::ffff:203.0.113.9", proxies), "203.0.113.9")
  })

  it("an unparsable entry ends the walk at the hop that forwarded it", () => {
    assert.strictEqual(client("10.0.0.2", "203.0.113.9, garbage", "10.0.0.0/8"), "10.0.0.2")
    assert.strictEqual(client("10.0.0.2", "203.0.113.9, garbage", "2"), "10.0.0.2")
  })
})
