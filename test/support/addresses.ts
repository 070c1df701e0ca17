import { Arbitrary, Schema } from "effect"

/**
 * Addresses for the SSRF tests, written independently of src/domain/NetworkPolicy.ts: the test's own copy of the IANA
 * ranges that must be refused, IPv6 transition forms that carry an IPv4 address, and every text spelling of an IPv6
 * address. Nothing here connects anywhere.
 */

/** IPv4 ranges a webhook must never reach (IANA IPv4 Special-Purpose Address Registry, not globally reachable, and multicast). */
export const refusedIpv4Ranges: ReadonlyArray<readonly [string, number, string]> = [
  ["0.0.0.0", 8, "this network"],
  ["10.0.0.0", 8, "private-use"],
  ["100.64.0.0", 10, "shared address space (CGNAT)"],
  ["127.0.0.0", 8, "loopback"],
  ["169.254.0.0", 16, "link-local, cloud metadata"],
  ["172.16.0.0", 12, "private-use"],
  ["192.0.0.0", 24, "IETF protocol assignments"],
  ["192.0.2.0", 24, "TEST-NET-1"],
  ["192.88.99.0", 24, "deprecated 6to4 relay anycast"],
  ["192.168.0.0", 16, "private-use"],
  ["198.18.0.0", 15, "benchmarking"],
  ["198.51.100.0", 24, "TEST-NET-2"],
  ["203.0.113.0", 24, "TEST-NET-3"],
  ["224.0.0.0", 4, "multicast"],
  ["240.0.0.0", 4, "reserved, limited broadcast"]
]

const toNumber = (dotted: string): number => dotted.split(".").reduce((acc, part) => acc * 256 + Number(part), 0)

export const ipv4Text = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".")

/** First and last address of a range, as 32-bit numbers. */
export const rangeBounds = ([network, prefix]: readonly [string, number, string]): readonly [number, number] => {
  const size = 2 ** (32 - prefix)
  const first = toNumber(network)
  return [first, first + size - 1]
}

/** Whether an IPv4 address (as a number) lies in one of the refused ranges, by the test's own table. */
export const inRefusedIpv4 = (n: number): boolean =>
  refusedIpv4Ranges.some((range) => {
    const [first, last] = rangeBounds(range)
    return n >= first && n <= last
  })

/** The IPv6 forms that carry an IPv4 address. */
export const transitionKinds = ["mapped", "siit", "nat64", "6to4", "teredo-server", "teredo-client"] as const
export type TransitionKind = (typeof transitionKinds)[number]

/**
 * The 16 bytes of an IPv6 address of `kind` carrying the IPv4 address `v4` (a 32-bit number); `filler` supplies the
 * bits the form leaves free (6to4's subnet and interface id, Teredo's other address, flags and port).
 */
export const transitionBytes = (kind: TransitionKind, v4: number, filler: ReadonlyArray<number>): Uint8Array => {
  const bytes = new Uint8Array(16)
  const put = (offset: number, n: number) => {
    bytes[offset] = n >>> 24
    bytes[offset + 1] = (n >>> 16) & 255
    bytes[offset + 2] = (n >>> 8) & 255
    bytes[offset + 3] = n & 255
  }
  const fill = (from: number) => {
    for (let i = from; i < 16; i++) bytes[i] = (filler[i] ?? 0) & 255
  }
  switch (kind) {
    case "mapped": // ::ffff:a.b.c.d
      bytes[10] = 0xff
      bytes[11] = 0xff
      put(12, v4)
      break
    case "siit": // ::ffff:0:a.b.c.d
      bytes[8] = 0xff
      bytes[9] = 0xff
      put(12, v4)
      break
    case "nat64": // 64:ff9b::a.b.c.d
      bytes.set([0x00, 0x64, 0xff, 0x9b])
      put(12, v4)
      break
    case "6to4": // 2002:aabb:ccdd:<subnet>:<interface id>
      fill(6)
      bytes.set([0x20, 0x02])
      put(2, v4)
      break
    case "teredo-server": // 2001:0:<server>:<flags>:<port>:<~client>
      fill(8)
      bytes.set([0x20, 0x01, 0x00, 0x00])
      put(4, v4)
      break
    case "teredo-client":
      fill(4)
      bytes.set([0x20, 0x01, 0x00, 0x00])
      put(12, ~v4 >>> 0)
      break
  }
  return bytes
}

const groupsOf = (bytes: Uint8Array): Array<number> =>
  Array.from({ length: 8 }, (_, i) => ((bytes[2 * i] ?? 0) << 8) | (bytes[2 * i + 1] ?? 0))

/** `groups` (hex strings) with the run [start, start+length) written as `::`. */
const compress = (groups: ReadonlyArray<string>, start: number, length: number): string =>
  `${groups.slice(0, start).join(":")}::${groups.slice(start + length).join(":")}`

/** Every zero run of `groups` as [start, length], longest first. */
const zeroRuns = (groups: ReadonlyArray<number>): Array<readonly [number, number]> => {
  const runs: Array<readonly [number, number]> = []
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < groups.length && groups[j] === 0) j++
    runs.push([i, j - i])
    i = j
  }
  return runs.sort((a, b) => b[1] - a[1])
}

/**
 * Every text spelling of an IPv6 address we know: full with and without leading zeros, each zero run compressed,
 * upper case, and the last 32 bits as a dotted quad (full and compressed). All distinct, all valid IPv6 text.
 */
export const ipv6Spellings = (bytes: Uint8Array): ReadonlyArray<string> => {
  const numbers = groupsOf(bytes)
  const plain = numbers.map((g) => g.toString(16))
  const padded = plain.map((g) => g.padStart(4, "0"))
  const quad = `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`
  const head = plain.slice(0, 6)
  const spellings = [plain.join(":"), padded.join(":"), `${head.join(":")}:${quad}`]
  for (const [start, length] of zeroRuns(numbers)) {
    spellings.push(compress(plain, start, length), compress(padded, start, length))
    if (start + length <= 6) spellings.push(`${compress(head, start, length)}${start + length === 6 ? "" : ":"}${quad}`)
  }
  spellings.push(...spellings.map((s) => s.toUpperCase()))
  return [...new Set(spellings)]
}

const intBetween = (minimum: number, maximum: number) =>
  Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum, maximum })))

/** An address inside one of the refused IPv4 ranges (both ends of each range included often). */
export const refusedIpv4 = Arbitrary.map(
  Arbitrary.all([intBetween(0, refusedIpv4Ranges.length - 1), intBetween(0, 2 ** 32 - 1), intBetween(0, 3)]),
  ([index, random, edge]) => {
    const [first, last] = rangeBounds(refusedIpv4Ranges[index] ?? refusedIpv4Ranges[0] ?? ["0.0.0.0", 8, ""])
    if (edge === 0) return first
    if (edge === 1) return last
    return first + (random % (last - first + 1))
  }
)

export const anyIpv4 = intBetween(0, 2 ** 32 - 1)
export const filler = Arbitrary.array(intBetween(0, 255), { minLength: 16, maxLength: 16 })
export const transitionKind = Arbitrary.map(
  intBetween(0, transitionKinds.length - 1),
  (i) => transitionKinds[i] ?? "mapped"
)
/** Which spelling of `ipv6Spellings` to use (taken modulo their number). */
export const spellingIndex = intBetween(0, 63)
