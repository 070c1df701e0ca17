import { assert, layer } from "@effect/vitest"
import { Arbitrary, Context, Effect, Layer, Option, Redacted, Schema } from "effect"
import { Webhook } from "standardwebhooks"
import { ApiKeyInfo, ApiKeyName, CreateApiKey, CreatedApiKey } from "../src/domain/ApiKeyInfo.ts"
import { Delivery as DeliverySchema, Recovered } from "../src/domain/Delivery.ts"
import { EndpointMetadata, Endpoint as EndpointSchema, EndpointSecret } from "../src/domain/Endpoint.ts"
import { EndpointStats } from "../src/domain/EndpointStats.ts"
import { Event as EventSchema, EventType, maxDataDepth, PublishedEvent } from "../src/domain/Event.ts"
import { CatalogEventType, CreateEventType } from "../src/domain/EventTypeCatalog.ts"
import { isOperationalType } from "../src/domain/OperationalEvents.ts"
import { PortalSession } from "../src/domain/PortalSession.ts"
import { isStorableText } from "../src/domain/StorableText.ts"
import {
  CreatedTenant,
  IssuedApiKey,
  TenantDetail,
  TenantName,
  TenantRateLimit,
  Tenant as TenantSchema
} from "../src/domain/Tenant.ts"
import { maskUrlPassword } from "../src/domain/UrlCredentials.ts"
import {
  filler,
  ipv4Text,
  ipv6Spellings,
  refusedIpv4,
  spellingIndex,
  transitionBytes,
  transitionKind
} from "./support/addresses.ts"
import { fastWorker } from "./support/deliveryApi.ts"
import { apiClient, createTenant, type RequestOptions, request, type WireResponse } from "./support/http.ts"
import { jsonObjectSource } from "./support/jsonText.ts"
import { errorPaths, expectProblem, problemBody } from "./support/problems.ts"
import { answer, makeReceiver, type Receiver, verifyHeaders, webhookOf } from "./support/receiver.ts"
import { TestServer, testServer } from "./support/testServer.ts"

/**
 * Generated bodies against every write endpoint: no input may produce a 5xx or a hang (each request is aborted after
 * 10 seconds), every 4xx is an RFC 9457 problem, and every success has the documented shape. Generation is Effect's
 * own `Arbitrary`: Schema-derived values (which already include NUL, unpaired surrogates, `__proto__`, extreme
 * numbers) mixed with hand-picked tricky values.
 */

// -------------------------------------------------------------------------------------------------------------------
// Generators
// -------------------------------------------------------------------------------------------------------------------

const intBetween = (minimum: number, maximum: number) =>
  Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum, maximum })))

/** One of the given arbitraries (shrinks towards the first). */
const oneOf = <A>(...choices: ReadonlyArray<Arbitrary.Arbitrary<A>>): Arbitrary.Arbitrary<A> =>
  Arbitrary.flatMap(intBetween(0, choices.length - 1), (i) => choices[i] as Arbitrary.Arbitrary<A>)

/** One of the given values (shrinks towards the first). */
const constantFrom = <A>(values: ReadonlyArray<A>): Arbitrary.Arbitrary<A> =>
  Arbitrary.map(intBetween(0, values.length - 1), (i) => values[i] as A)

/** Marks a member to leave out of the generated object. */
const absent: unique symbol = Symbol("absent")
type Maybe<A> = A | typeof absent

const optional = <A>(arbitrary: Arbitrary.Arbitrary<A>): Arbitrary.Arbitrary<Maybe<A>> =>
  oneOf<Maybe<A>>(Arbitrary.Constant(absent), arbitrary)

/** The object without its absent members. */
const compact = (fields: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== absent))

const nested = (depth: number, make: (inner: unknown) => unknown, leaf: unknown = 1): unknown => {
  let value = leaf
  for (let i = 0; i < depth; i++) value = make(value)
  return value
}
const deepArray = (depth: number) => nested(depth, (inner) => [inner])
const deepObject = (depth: number) => nested(depth, (inner) => ({ a: inner }))
const manyKeys = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]))

const trickyStrings: ReadonlyArray<string> = [
  "",
  " ",
  "\u0000",
  "a\u0000b",
  "\ud800",
  "x\udc00y",
  "\udc00\ud800",
  "😀",
  "é",
  "\u202e",
  "\ufeff",
  "\u0007\u001b[31m",
  "x".repeat(10_000),
  "__proto__",
  "constructor",
  "toString",
  "null",
  "NaN",
  "-1",
  "1e400",
  "../../etc/passwd",
  "%00",
  "%",
  "<script>alert(1)</script>",
  "' OR '1'='1",
  "'); DROP TABLE events; --",
  "$1",
  "\\",
  "\\u0000",
  "\r\n",
  "order.*",
  "*",
  ".*",
  "..*",
  "order..created",
  ".",
  "a".repeat(128),
  "a".repeat(129),
  `${"a".repeat(126)}.*`,
  `${"a".repeat(127)}.*`,
  "ｆｕｌｌｗｉｄｔｈ"
]

const trickyValues: ReadonlyArray<unknown> = [
  null,
  true,
  false,
  0,
  -0,
  1e308,
  -1e308,
  5e-324,
  Number.MAX_SAFE_INTEGER,
  Number.MAX_SAFE_INTEGER + 2,
  0.1 + 0.2,
  [],
  {},
  [null],
  { "": "" },
  { "\u0000": 1 },
  { a: "\u0000" },
  { a: "\ud800" },
  { "\udfff": "x" },
  { __proto__: null, constructor: "x", toString: 1 },
  JSON.parse('{"__proto__": {"polluted": true}}'),
  { a: deepArray(maxDataDepth - 1) },
  { a: deepArray(maxDataDepth) },
  { a: deepObject(maxDataDepth - 1) },
  { a: deepObject(maxDataDepth) },
  { a: deepArray(1000) },
  deepObject(2000),
  manyKeys(5000),
  { list: Array.from({ length: 20_000 }, (_, i) => i) },
  { s: "x".repeat(200_000) },
  ...trickyStrings
]

const trickyDates: ReadonlyArray<unknown> = [
  "2026-02-30T00:00:00Z",
  "2026-02-29T00:00:00Z",
  "2024-02-29T00:00:00Z",
  "2026-04-31T12:00:00+02:00",
  "2026-13-01T00:00:00Z",
  "2026-00-10T00:00:00Z",
  "2026-01-01T24:00:00Z",
  "2026-01-01T23:59:60Z",
  "2026-01-01T23:60:00Z",
  "1899-12-31T23:59:59Z",
  "1900-01-01T00:00:00Z",
  "1900-01-01T00:00:00+14:00",
  "0001-01-01T00:00:00Z",
  "0000-01-01T00:00:00Z",
  "9999-12-31T23:59:59Z",
  "9999-12-31T23:59:59-14:00",
  "9999-12-31T23:59:59.999999999-14:00",
  "2026-01-01T00:00:00+14:00",
  "2026-01-01T00:00:00-14:00",
  "2026-01-01T00:00:00+14:01",
  "2026-01-01T00:00:00+15:59",
  "2026-01-01T00:00:00+16:00",
  "2026-01-01T00:00:00+23:59",
  "2026-01-01T00:00:00+24:00",
  "2026-01-01T00:00:00+05:75",
  "2026-01-01T00:00:00.1234567891Z",
  "2026-01-01T00:00:00.123456789Z",
  "2026-01-01T00:00:00.9999999Z",
  "+010000-01-01T00:00:00Z",
  "-000001-01-01T00:00:00Z",
  "2026-01-01T00:00:00z",
  "2026-01-01t00:00:00Z",
  "2026-01-01",
  "2026-01-01T00:00:00",
  "2026-01-01 00:00:00Z",
  "now",
  "infinity",
  "epoch",
  "",
  0,
  1767225600000,
  null,
  { date: "2026-01-01T00:00:00Z" }
]

/** Valid date-times between 1900 and 9999 with offsets up to ±14:00 (millisecond precision). */
const validOccurredAt = Arbitrary.map(
  Arbitrary.all([intBetween(Date.UTC(1901, 0, 1), Date.UTC(9998, 11, 31)), intBetween(-14 * 4, 14 * 4)]),
  ([time, quarterHours]) => {
    const offset = quarterHours * 15
    const local = new Date(time + offset * 60_000).toISOString().slice(0, -1)
    if (offset === 0) return `${local}Z`
    const abs = Math.abs(offset)
    const hh = String(Math.floor(abs / 60)).padStart(2, "0")
    const mm = String(abs % 60).padStart(2, "0")
    return `${local}${offset < 0 ? "-" : "+"}${hh}:${mm}`
  }
)

const anyString = Arbitrary.schema(Schema.String)
/** Header names a receiver might want, and those codex-api refuses (EndpointHeaders), in various spellings. */
const headerNames = ["Authorization", "X-Api-Key", "x-env", "Host", "content-type", "Webhook-Id", "Te", "bad name", ""]
const anyJson: Arbitrary.Arbitrary<unknown> = Arbitrary.schema(Schema.Json)
const jsonObject = Arbitrary.schema(Schema.Record(Schema.String, Schema.Json))
const tricky = constantFrom(trickyValues)
const trickyString = constantFrom(trickyStrings)
const anything: Arbitrary.Arbitrary<unknown> = oneOf<unknown>(anyJson, tricky, anyString)

const eventTypeLike = oneOf<unknown>(Arbitrary.schema(EventType), trickyString, anyString, tricky)

const eventBody = Arbitrary.map(
  Arbitrary.all({
    type: optional(eventTypeLike),
    data: optional(oneOf<unknown>(jsonObject, tricky, anyJson)),
    occurredAt: optional(oneOf<unknown>(validOccurredAt, constantFrom(trickyDates), anyString)),
    extra: optional(anything)
  }),
  compact
)

/**
 * Another spelling of `path` that the router reads as the same route: letters in either case, characters
 * percent-encoded (either hex case), slashes doubled or tripled, a trailing slash. Each choice comes from the array.
 */
const respell = (path: string, choices: ReadonlyArray<number>): string => {
  let out = ""
  let i = 0
  const next = () => choices[i++ % choices.length] ?? 0
  for (const char of path) {
    const choice = next()
    if (char === "/") out += "/".repeat(1 + (choice % 3))
    else if (choice === 1) out += char.toUpperCase()
    else if (choice === 2) out += `%${char.charCodeAt(0).toString(16)}`
    else if (choice === 3) out += `%${char.charCodeAt(0).toString(16).toUpperCase()}`
    else out += char
  }
  return next() % 2 === 0 ? out : `${out}/`
}

const spellingChoices = Arbitrary.schema(
  Schema.Array(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 3 }))).check(Schema.isMinLength(1))
)

/** URLs the development server accepts without any network call (private networks are allowed). */
const urlLike = oneOf<unknown>(
  Arbitrary.map(anyString, (s) => `http://127.0.0.1:9999/${encodeURIComponent(s.toWellFormed())}`),
  Arbitrary.map(anyString, (s) => `https://93.184.216.34/${s}`),
  constantFrom<unknown>([
    "https://93.184.216.34/hook",
    "http://[::1]:9999/hook",
    "ftp://127.0.0.1/",
    "javascript:alert(1)",
    "http://127.0.0.1:9999/\u0000",
    "http://127.0.0.1:9999/\ud800",
    `https://93.184.216.34/${"é".repeat(1500)}`,
    `https://93.184.216.34/${"a".repeat(2100)}`,
    "http://[::1%25eth0]/",
    "http://exa mple.com/",
    "http://:80/",
    "http://[/",
    "http://a:99999/",
    "https://user:pass@93.184.216.34/"
  ]),
  trickyString,
  tricky
)

const patternLike = oneOf<unknown>(
  Arbitrary.schema(EventType),
  Arbitrary.map(Arbitrary.schema(EventType), (t) => `${t.slice(0, 126)}.*`),
  trickyString,
  anyString
)

const endpointFields = {
  url: optional(urlLike),
  description: optional(oneOf<unknown>(anyString, trickyString, tricky)),
  eventTypes: optional(
    oneOf<unknown>(
      Arbitrary.array(patternLike, { maxLength: 5 }),
      Arbitrary.Constant(Array.from({ length: 101 }, (_, i) => `type.${i}`)),
      tricky
    )
  ),
  enabled: optional(oneOf<unknown>(Arbitrary.schema(Schema.Boolean), tricky)),
  metadata: optional(
    oneOf<unknown>(
      Arbitrary.schema(EndpointMetadata),
      Arbitrary.schema(Schema.Record(Schema.String, Schema.String)),
      Arbitrary.Constant(Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"]))),
      Arbitrary.Constant({ ["k".repeat(65)]: "v" }),
      Arbitrary.Constant({ k: "v".repeat(513) }),
      tricky
    )
  ),
  extra: optional(anything)
}

const endpointBody = Arbitrary.map(Arbitrary.all(endpointFields), compact)
const createEndpointBody = Arbitrary.map(
  Arbitrary.all({ ...endpointFields, url: oneOf<Maybe<unknown>>(urlLike, Arbitrary.Constant(absent)) }),
  compact
)

const tenantBody = Arbitrary.map(
  Arbitrary.all({
    name: optional(oneOf<unknown>(Arbitrary.schema(TenantName), anyString, trickyString, tricky)),
    extra: optional(anything)
  }),
  compact
)

/** `POST /v1/api-keys` bodies: valid members, or anything in their place. */
const apiKeyBody = Arbitrary.map(
  Arbitrary.all({
    name: optional(oneOf<unknown>(Arbitrary.schema(ApiKeyName), anyString, trickyString, tricky)),
    scope: optional(oneOf<unknown>(constantFrom(["full", "read"]), anyString, tricky)),
    expiresAt: optional(oneOf<unknown>(validOccurredAt, constantFrom(trickyDates), anyString, tricky)),
    extra: optional(anything)
  }),
  compact
)

/** `POST /v1/event-types` bodies: valid members (schemas that compile or not, examples that match or not), or anything. */
const eventTypeBody = Arbitrary.map(
  Arbitrary.all({
    name: optional(eventTypeLike),
    description: optional(oneOf<unknown>(anyString, trickyString, tricky)),
    schema: optional(
      oneOf<unknown>(
        constantFrom<unknown>([
          { type: "object" },
          { type: "object", required: ["a"], properties: { a: { type: "integer" } } },
          { type: "nonsense" },
          { $ref: "#/nowhere" },
          { properties: { a: { pattern: "(" } } },
          { type: "object", properties: { d: { type: "string", format: "date-time" } } },
          null
        ]),
        jsonObject,
        tricky
      )
    ),
    examples: optional(
      oneOf<unknown>(
        constantFrom<unknown>([[], [{ a: 1 }], [{ a: "x" }], [{}]]),
        Arbitrary.schema(Schema.Array(Schema.Record(Schema.String, Schema.Json))),
        tricky
      )
    ),
    deprecated: optional(oneOf<unknown>(constantFrom([true, false]), tricky)),
    archived: optional(oneOf<unknown>(constantFrom([true, false]), tricky)),
    extra: optional(anything)
  }),
  compact
)

const sinceLike = oneOf<unknown>(validOccurredAt, constantFrom(trickyDates), anyString, tricky)

/**
 * `POST /v1/endpoints/:id/recover` bodies: a well-formed `since` alone (`valid`: never refused), or a `since` of any
 * kind or none, maybe with more, or anything at all.
 */
const recoverRequest = oneOf<{ readonly body: unknown; readonly valid: boolean }>(
  Arbitrary.map(validOccurredAt, (since) => ({ body: { since }, valid: true })),
  Arbitrary.map(Arbitrary.all({ since: optional(sinceLike), extra: optional(anything) }), (fields) => ({
    body: compact(fields),
    valid: false
  })),
  Arbitrary.map(anything, (body) => ({ body, valid: false }))
)

/**
 * `GET /v1/endpoints/:id/stats` query strings: none, a well-formed `since` (`valid`: 200 unless in the future), or a
 * `since` of any text, repeated, empty, or beside a parameter the route does not take.
 */
const statsQuery = oneOf<{ readonly query: string; readonly since: string | undefined }>(
  Arbitrary.Constant({ query: "", since: undefined }),
  Arbitrary.map(validOccurredAt, (since) => ({ query: `?since=${encodeURIComponent(since)}`, since })),
  Arbitrary.map(
    oneOf<string>(constantFrom(trickyDates.filter((d): d is string => typeof d === "string")), trickyString, anyString),
    // A URL carries UTF-8: text with lone surrogates goes as its well-formed spelling.
    (text) => ({ query: `?since=${encodeURIComponent(text.toWellFormed())}`, since: undefined })
  ),
  Arbitrary.map(
    constantFrom([
      "?since",
      "?since=",
      "?since=2026-01-01T00:00:00Z&since=2026-01-02T00:00:00Z",
      "?since[]=2026-01-01T00:00:00Z",
      "?since=%",
      "?since=%00",
      "?since=2026-01-01T00:00:00%2B01:00",
      "?since=2026-01-01T00:00:00+01:00",
      "?limit=1",
      `?since=${"9".repeat(10_000)}`
    ]),
    (query) => ({ query, since: undefined })
  )
)

const quotaLike = oneOf<unknown>(
  Arbitrary.schema(TenantRateLimit),
  Arbitrary.Constant(null),
  Arbitrary.map(
    Arbitrary.all({
      limit: oneOf<unknown>(intBetween(-2, 2), Arbitrary.Constant(1_000_000_001), tricky),
      windowSeconds: oneOf<unknown>(intBetween(-2, 2), Arbitrary.Constant(31_536_001), tricky)
    }),
    (quota) => quota
  ),
  tricky
)

/** `PATCH /admin/tenants/:id` bodies. */
const tenantUpdateBody = Arbitrary.map(
  Arbitrary.all({
    name: optional(oneOf<unknown>(Arbitrary.schema(TenantName), anyString, trickyString, tricky)),
    rateLimit: optional(quotaLike),
    retentionSeconds: optional(
      oneOf<unknown>(intBetween(-1, 2), Arbitrary.Constant(315_360_001), Arbitrary.Constant(null), tricky)
    ),
    strictEventTypes: optional(oneOf<unknown>(constantFrom([true, false]), tricky)),
    extra: optional(anything)
  }),
  compact
)

type Target =
  | { readonly _tag: "Own" }
  | { readonly _tag: "Foreign" }
  /** A path segment used as is: malformed ids and arbitrary (percent-encoded) text. */
  | { readonly _tag: "Raw"; readonly segment: string }

const raw = (segment: string): Target => ({ _tag: "Raw", segment })

const target = oneOf<Target>(
  Arbitrary.Constant({ _tag: "Own" }),
  Arbitrary.Constant({ _tag: "Foreign" }),
  constantFrom(
    [
      "ep_0000000000000000000000000Z",
      "ep_0000000000000000000000000z",
      "dlv_0000000000000000000000000Z",
      "ten_0000000000000000000000000Z",
      "ep_",
      "evt_0000000000000000000000000Z",
      "%00",
      "%ZZ",
      "..%2F..%2Fadmin",
      "ep_0000000000000000000000000Z%00",
      "x".repeat(5000),
      encodeURIComponent("ep_0' OR '1'='1")
    ].map(raw)
  ),
  Arbitrary.map(anyString, (s) => raw(encodeURIComponent(s.toWellFormed())))
)

const deepRaw = (depth: number) => `{"type":"deep","data":{"a":${"[".repeat(depth)}${"]".repeat(depth)}}}`

/** Bodies of POST .../portal-sessions: valid ones (expiresIn within and beyond the hour), near misses, extra members. */
const portalSessionBody = Arbitrary.map(
  Arbitrary.all({
    readOnly: optional(oneOf<unknown>(constantFrom([true, false]), tricky)),
    expiresIn: optional(oneOf<unknown>(intBetween(-2, 4000), constantFrom([3600, 3601, 1, 0, 1.5, "60"]), tricky)),
    extra: optional(oneOf<unknown>(constantFrom(["scope", "read"]), tricky))
  }),
  compact
)

const rawBody = oneOf<string | Uint8Array>(
  anyString,
  Arbitrary.map(eventBody, (body) => JSON.stringify(body)),
  Arbitrary.map(
    Arbitrary.all([Arbitrary.map(eventBody, (body) => JSON.stringify(body)), intBetween(0, 100)]),
    ([json, cut]) => json.slice(0, Math.floor((json.length * cut) / 100))
  ),
  constantFrom<string | Uint8Array>([
    "",
    "{",
    "}",
    "null",
    "[]",
    "0",
    '""',
    "\ufeff{}",
    '{"type":"a","data":{}}\u0000',
    '{"type":"a","data":{"x":1e999}}',
    '{"type":"a","data":{"x":-1e999}}',
    '{"type":"a","data":{"x":123456789012345678901234567890123456789}}',
    '{"type":"a","data":{"x":"\\u0000"}}',
    '{"type":"a","data":{"x":"\\ud800"}}',
    '{"type":"a","data":{"\\u0000":1}}',
    '{"type":"a","data":{},"occurredAt":"2026-02-30T00:00:00Z"}',
    '{"type":"a","type":"b","data":{}}',
    '{"__proto__":{"type":"a","data":{}}}',
    '{"name":"x","name":"\\u0000"}',
    '{"url":"http://127.0.0.1:9999/\\u0000"}',
    '{"description":"\\u0000"}',
    '{"metadata":{"\\u0000":"x"}}',
    deepRaw(maxDataDepth),
    deepRaw(10_000),
    deepRaw(100_000),
    `{"type":"wide","data":{${Array.from({ length: 10_000 }, (_, i) => `"k${i}":${i}`).join(",")}}}`,
    new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]),
    new Uint8Array([0xc3, 0x28]),
    new Uint8Array([0, 0, 0, 0])
  ])
)

const contentType = constantFrom([
  "application/json",
  "application/json",
  "application/json; charset=utf-8",
  "application/json; charset=utf-16",
  "APPLICATION/JSON",
  "application/merge-patch+json",
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "multipart/form-data",
  "application/octet-stream",
  "*/*"
])

// -------------------------------------------------------------------------------------------------------------------
// Checks
// -------------------------------------------------------------------------------------------------------------------

/** No 5xx; a 4xx is problem+json; returns the response for further checks. */
const sound = (response: WireResponse, input: unknown): WireResponse => {
  const context = () => `input: ${JSON.stringify(input)?.slice(0, 500)}\nresponse: ${response.text.slice(0, 500)}`
  assert.isBelow(response.status, 500, context())
  assert.isAtLeast(response.status, 200, context())
  if (response.status >= 400) problemBody(response, { echoes: stringsOf(input) })
  return response
}

/** Every string in a value, member names included: what a problem's `detail` may quote back. */
const stringsOf = (value: unknown): ReadonlyArray<string> => {
  // A loop, not recursion: generated values may be nested deeper than the stack goes.
  const found: Array<string> = []
  const pending: Array<unknown> = [value]
  for (let next = pending.pop(); next !== undefined || pending.length > 0; next = pending.pop()) {
    if (typeof next === "string") found.push(next)
    else if (Array.isArray(next)) for (const item of next) pending.push(item)
    else if (typeof next === "object" && next !== null) {
      for (const [name, member] of Object.entries(next)) {
        found.push(name)
        pending.push(member)
      }
    }
  }
  return found
}

/** A POST with `body` as JSON, or with no body at all when it is absent. */
const postWith = (bearer: string | undefined, body: Maybe<unknown>): RequestOptions =>
  body === absent ? { method: "POST", bearer } : { bearer, json: body }

/**
 * A route that takes no body: only none or `{}` passes; anything else is a 400 saying so (a member sent there must not
 * be silently ignored). True when `body` was refused that way. (A path that names no route at all, or another route,
 * is answered 404 or 405 first.)
 */
const refusedAsBody = (response: WireResponse, body: Maybe<unknown>): boolean => {
  const wire = body === absent ? undefined : JSON.stringify(body)
  const parsed: unknown = wire === undefined ? undefined : JSON.parse(wire)
  const emptyObject =
    typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) && Object.keys(parsed).length === 0
  const routed = response.status !== 405 && !(response.status === 404 && response.text.includes("No route matches"))
  if (wire === undefined || emptyObject || !routed) return false
  assert.strictEqual(response.status, 400, response.text)
  assert.include(String(problemBody(response).detail), "takes no request body")
  return true
}

/**
 * The answer for an id that is not the tenant's (or names nothing): 404. A raw segment may also change which route
 * the path names (an empty one: `/v1/deliveries//retry` is `/v1/deliveries/retry`), then a 405 says so.
 */
const assertNotFound = (response: WireResponse, to: Target) => {
  if (to._tag === "Raw" && response.status === 405) return
  assert.strictEqual(response.status, 404, response.text)
}

/** The success body decodes with the contract's schema. */
const decoded = <S extends Schema.ConstraintDecoder<unknown>>(schema: S, response: WireResponse): S["Type"] =>
  Schema.decodeUnknownSync(schema)(JSON.parse(response.text))

const hasUnstorableText = (value: unknown): boolean => {
  if (typeof value === "string") return !isStorableText(value)
  if (Array.isArray(value)) return value.some(hasUnstorableText)
  if (typeof value === "object" && value !== null) {
    return Object.entries(value).some(([key, inner]) => !isStorableText(key) || hasUnstorableText(inner))
  }
  return false
}

const propertyOptions = (runs: number) => ({ timeout: 180_000, arbitrary: { runs } })

// -------------------------------------------------------------------------------------------------------------------
// Server and fixture
// -------------------------------------------------------------------------------------------------------------------

interface FixtureShape {
  readonly apiKey: string
  /** An endpoint of this tenant (PATCH and rotate target). */
  readonly endpointId: string
  /** An endpoint of another tenant: always 404 here. */
  readonly foreignEndpointId: string
}

interface WriteFixtureShape extends FixtureShape {
  readonly tenantId: string
  /** A (pending: the worker is off) delivery of this tenant: the retry target. */
  readonly deliveryId: string
  /** A delivery of the other tenant: always 404 here. */
  readonly foreignDeliveryId: string
  /** An event of this tenant of its own, for DELETE /v1/events/:id/data (expunged by the first success). */
  readonly expungedEventId: string
  /** An event of the other tenant: always 404 here, and never expunged. */
  readonly foreignEventId: string
  /** The other tenant's key, to read its event back. */
  readonly foreignApiKey: string
  /**
   * A tenant of its own for the admin routes (PATCH, API keys): the quota the PATCH property sets there must never
   * throttle the tenant the other properties send as.
   */
  readonly adminTenantId: string
  /**
   * An endpoint of this tenant for every PATCH (the PATCH property, raw bodies, tricky values): disabling an endpoint
   * cancels its pending deliveries, and the retry and recover properties' endpoint and delivery must stay as they are
   * whatever order the properties run in.
   */
  readonly patchedEndpointId: string
  /** A tenant of its own for the API-keys property: the quota the admin PATCH property sets must not throttle its keys. */
  readonly keysTenantId: string
  /** A full key of that tenant, for the /v1/api-keys properties (which issue and revoke keys of its own). */
  readonly keysApiKey: string
  /** A key of the other tenant: always 404 to revoke here. */
  readonly foreignKeyId: string
  /** A tenant of its own for the /v1/event-types properties: its catalog must not refuse the other properties' events. */
  readonly catalogApiKey: string
  /** A portal session of the other tenant: always 404 to revoke with this tenant's key. */
  readonly foreignSessionId: string
}

class Fixture extends Context.Service<Fixture, WriteFixtureShape>()("test/FuzzFixture") {}

const createEndpoint = (apiKey: string) =>
  Effect.map(request("/v1/endpoints", { bearer: apiKey, json: { url: "http://127.0.0.1:9999/hook" } }), (response) => {
    assert.strictEqual(response.status, 201, response.text)
    return (JSON.parse(response.text) as { readonly id: string }).id
  })

/** Publishes one event as `apiKey`; returns its id. */
const createEvent = (apiKey: string, type: string) =>
  Effect.map(request("/v1/events", { bearer: apiKey, json: { type, data: { secret: "s" } } }), (published) => {
    assert.strictEqual(published.status, 202, published.text)
    return decoded(PublishedEvent, published).event.id
  })

/** Publishes one event as `apiKey` (whose tenant has one endpoint); returns the id of its delivery. */
const createDelivery = (apiKey: string) =>
  Effect.gen(function* () {
    const published = yield* request("/v1/events", { bearer: apiKey, json: { type: "fuzz.retry", data: {} } })
    assert.strictEqual(published.status, 202, published.text)
    const { event } = decoded(PublishedEvent, published)
    const listed = yield* request(`/v1/events/${event.id}/deliveries`, { bearer: apiKey })
    const [delivery] = (JSON.parse(listed.text) as { readonly data: ReadonlyArray<{ readonly id: string }> }).data
    assert.isDefined(delivery, listed.text)
    return delivery?.id ?? ""
  })

const FixtureLive = Layer.effect(
  Fixture,
  Effect.gen(function* () {
    const tenant = yield* createTenant("Fuzz tenant")
    const other = yield* createTenant("Fuzz neighbour")
    const admin = yield* createTenant("Fuzz admin target")
    const endpointId = yield* createEndpoint(tenant.apiKey)
    const foreignEndpointId = yield* createEndpoint(other.apiKey)
    const deliveryId = yield* createDelivery(tenant.apiKey)
    return {
      apiKey: tenant.apiKey,
      tenantId: tenant.tenantId,
      endpointId,
      foreignEndpointId,
      deliveryId,
      foreignDeliveryId: yield* createDelivery(other.apiKey),
      expungedEventId: yield* createEvent(tenant.apiKey, "fuzz.expunge"),
      foreignEventId: yield* createEvent(other.apiKey, "fuzz.expunge"),
      foreignApiKey: other.apiKey,
      adminTenantId: admin.tenantId,
      patchedEndpointId: yield* createEndpoint(tenant.apiKey),
      ...(yield* Effect.map(createTenant("Fuzz API keys"), (keys) => ({
        keysTenantId: keys.tenantId,
        keysApiKey: keys.apiKey
      }))),
      foreignKeyId: other.created.apiKey.id,
      catalogApiKey: (yield* createTenant("Fuzz catalog")).apiKey,
      foreignSessionId: yield* Effect.map(
        request("/v1/portal-sessions", { bearer: other.apiKey, json: {} }),
        (response) => decoded(PortalSession, response).id
      )
    }
  })
)

// Development defaults: private networks allowed, so no URL is ever resolved or called.
const Server = FixtureLive.pipe(Layer.provideMerge(testServer()))

layer(Server, { excludeTestServices: true, timeout: "60 seconds" })("fuzzing the write endpoints", (it) => {
  it.effect.prop(
    "POST /v1/events, schema-valid bodies: 202 and stored as sent, unless text the database cannot store (400)",
    {
      type: Arbitrary.schema(EventType),
      data: jsonObject,
      occurredAt: optional(validOccurredAt)
    },
    ({ type, data, occurredAt }) =>
      Effect.gen(function* () {
        const { apiKey } = yield* Fixture
        // Serialised once, and the verdict taken from those very bytes: generated values are shared, not cloned, so
        // the assertions must be about what was sent, not about an object that could change afterwards.
        const wire = JSON.stringify(compact({ type, data, occurredAt }))
        const body = JSON.parse(wire) as { readonly data: unknown }
        const response = sound(yield* request("/v1/events", { bearer: apiKey, raw: wire }), body)
        if (isOperationalType(type)) {
          assert.include(String(expectProblem(response, 422).detail), "reserved")
          return
        }
        if (hasUnstorableText(body.data)) {
          const problem = expectProblem(response, 400)
          assert.deepStrictEqual(errorPaths(problem), [["payload", "data"]])
          return
        }
        assert.strictEqual(response.status, 202, response.text)
        const published = decoded(PublishedEvent, response)
        assert.strictEqual(published.event.type, type)
        assert.deepStrictEqual(published.event.data, body.data)
        if (typeof occurredAt === "string") {
          assert.approximately(Date.parse(published.event.occurredAt), Date.parse(occurredAt), 1)
        }
        // Read back: the same event.
        const read = sound(yield* request(`/v1/events/${published.event.id}`, { bearer: apiKey }), body)
        assert.deepStrictEqual(decoded(EventSchema, read), published.event)
      }),
    propertyOptions(150)
  )

  it.effect.prop(
    "POST /v1/events, arbitrary JSON bodies: never a 5xx, every 4xx a problem",
    [oneOf<unknown>(eventBody, anything)],
    ([body]) =>
      Effect.gen(function* () {
        const { apiKey } = yield* Fixture
        const response = sound(yield* request("/v1/events", { bearer: apiKey, json: body }), body)
        if (response.status === 202) decoded(PublishedEvent, response)
        else assert.oneOf(response.status, [400, 413], response.text)
      }),
    propertyOptions(200)
  )

  it.effect.prop(
    "GET /v1/deliveries and GET /v1/events with any query: never a 5xx; a page, or a 400 problem",
    [
      constantFrom(["/v1/deliveries", "/v1/events"]),
      optional(oneOf<string>(constantFrom(["pending", "failed", "succeeded", "cancelled"]), anyString)),
      optional(oneOf<string>(trickyString, anyString, Arbitrary.schema(EventType))),
      optional(oneOf<string>(validOccurredAt, anyString)),
      optional(oneOf<string>(validOccurredAt, anyString)),
      optional(oneOf<string>(constantFrom(["1", "100", "0", "101", "-1", "1e2"]), anyString))
    ],
    ([path, status, type, since, until, limit]) =>
      Effect.gen(function* () {
        const { apiKey, endpointId } = yield* Fixture
        const query = new URLSearchParams()
        const put = (name: string, value: Maybe<string>) => {
          if (value !== absent) query.set(name, value)
        }
        if (path === "/v1/deliveries") {
          put("status", status)
          put("eventType", type)
          // The tenant's endpoint, or any text in its place (a NUL, a surrogate: a 400, never a 500).
          query.set("endpointId", type === absent ? endpointId : type)
        } else {
          put("type", type)
        }
        put("since", since)
        put("until", until)
        put("limit", limit)
        const response = sound(yield* request(`${path}?${query.toString()}`, { bearer: apiKey }), {
          path,
          query: query.toString()
        })
        if (response.status === 200) {
          const page = JSON.parse(response.text) as { readonly data: ReadonlyArray<unknown> }
          assert.isArray(page.data)
        } else if (response.status === 431) {
          // Long generated text, percent-encoded (up to 9 bytes a character), can pass the 16 KiB request-line limit.
          assert.isAbove(query.toString().length, 8 * 1024, response.text)
        } else {
          assert.strictEqual(response.status, 400, response.text)
        }
      }),
    propertyOptions(150)
  )

  it.effect.prop(
    "POST /v1/endpoints with custom headers: never a 5xx; accepted ones read back masked, the rest 400 or 422",
    [
      oneOf<unknown>(
        Arbitrary.schema(Schema.Record(Schema.String, Schema.String)),
        Arbitrary.map(
          Arbitrary.all([constantFrom(headerNames), oneOf<string>(anyString, trickyString, constantFrom(["v", " v"]))]),
          ([name, value]) => ({ [name]: value })
        ),
        anything
      )
    ],
    ([headers]) =>
      Effect.gen(function* () {
        const { apiKey } = yield* Fixture
        const body = { url: "http://127.0.0.1:9999/hook", headers }
        const response = sound(yield* request("/v1/endpoints", { bearer: apiKey, json: body }), body)
        if (response.status !== 201) {
          assert.oneOf(response.status, [400, 413, 422], response.text)
          return
        }
        const created = decoded(EndpointSchema, response)
        const sent = JSON.parse(JSON.stringify(headers)) as Record<string, string>
        assert.deepStrictEqual(created.headers, Object.fromEntries(Object.keys(sent).map((name) => [name, "****"])))
      }),
    propertyOptions(150)
  )

  it.effect.prop(
    "POST /v1/endpoints with any filter and rateLimit: never a 5xx; accepted ones read back as sent",
    [optional(oneOf<unknown>(anyJson, jsonObject, tricky)), optional(oneOf<unknown>(intBetween(-5, 20_000), anything))],
    ([filter, rateLimit]) =>
      Effect.gen(function* () {
        const { apiKey } = yield* Fixture
        const body = compact({ url: "http://127.0.0.1:9999/hook", filter, rateLimit })
        const response = sound(yield* request("/v1/endpoints", { bearer: apiKey, json: body }), body)
        if (response.status !== 201) {
          assert.oneOf(response.status, [400, 413, 422], response.text)
          return
        }
        const created = decoded(EndpointSchema, response)
        const sent = JSON.parse(JSON.stringify(body)) as { readonly filter?: unknown; readonly rateLimit?: unknown }
        assert.deepStrictEqual(created.rateLimit, sent.rateLimit ?? null)
        if (sent.filter === undefined || sent.filter === null) assert.isNull(created.filter)
        else assert.isNotNull(created.filter)
      }),
    propertyOptions(150)
  )

  it.effect.prop(
    "POST /v1/endpoints: never a 5xx; what is created reads back as sent",
    [createEndpointBody],
    ([body]) =>
      Effect.gen(function* () {
        const { apiKey } = yield* Fixture
        const response = sound(yield* request("/v1/endpoints", { bearer: apiKey, json: body }), body)
        if (response.status !== 201) {
          assert.oneOf(response.status, [400, 413, 422], response.text)
          return
        }
        const created = decoded(EndpointSchema, response)
        // As sent, but a password is never shown back.
        const sentUrl = String(body.url)
        assert.strictEqual(created.url, maskUrlPassword(sentUrl))
        const password = URL.canParse(sentUrl) ? new URL(sentUrl).password : ""
        if (password !== "") assert.notInclude(created.url, `:${password}@`)
        if (body.description !== undefined) assert.strictEqual(created.description, body.description)
        if (body.eventTypes !== undefined) assert.deepStrictEqual(created.eventTypes, body.eventTypes)
        if (body.metadata !== undefined) assert.deepStrictEqual(created.metadata, body.metadata)
        const read = sound(yield* request(`/v1/endpoints/${created.id}`, { bearer: apiKey }), body)
        assert.deepStrictEqual(decoded(EndpointSchema, read), created)
      }),
    propertyOptions(200)
  )

  it.effect.prop(
    "PATCH /v1/endpoints/:id: never a 5xx; unknown or foreign ids are 404",
    [endpointBody, intBetween(0, 3)],
    ([body, which]) =>
      Effect.gen(function* () {
        const { apiKey, patchedEndpointId, foreignEndpointId } = yield* Fixture
        const id = which === 0 ? foreignEndpointId : patchedEndpointId
        const response = sound(yield* request(`/v1/endpoints/${id}`, { method: "PATCH", bearer: apiKey, json: body }), {
          id,
          body
        })
        if (response.status === 200) {
          assert.notStrictEqual(id, foreignEndpointId)
          const updated = decoded(EndpointSchema, response)
          if (body.url !== undefined) assert.strictEqual(updated.url, maskUrlPassword(String(body.url)))
          if (body.metadata !== undefined) assert.deepStrictEqual(updated.metadata, body.metadata)
        } else {
          assert.oneOf(response.status, [400, 404, 413, 422], response.text)
        }
      }),
    propertyOptions(150)
  )

  it.effect.prop(
    "POST /admin/tenants: never a 5xx; a tenant is created exactly for a valid name",
    [tenantBody],
    ([body]) =>
      Effect.gen(function* () {
        const response = sound(yield* request("/admin/tenants", { json: body }), body)
        if (response.status === 201) {
          const created = decoded(CreatedTenant, response)
          assert.strictEqual(created.tenant.name, body.name)
        } else {
          assert.oneOf(response.status, [400, 413], response.text)
        }
      }),
    propertyOptions(150)
  )

  it.effect.prop(
    "POST /v1/endpoints/:id/secret/rotate: never a 5xx; only the tenant's own endpoint rotates",
    [target, optional(anything)],
    ([to, body]) =>
      Effect.gen(function* () {
        const { apiKey, endpointId, foreignEndpointId } = yield* Fixture
        const id = to._tag === "Own" ? endpointId : to._tag === "Foreign" ? foreignEndpointId : to.segment
        const options: RequestOptions =
          body === absent ? { method: "POST", bearer: apiKey } : { bearer: apiKey, json: body }
        const response = sound(yield* request(`/v1/endpoints/${id}/secret/rotate`, options), { id, body })
        // The route takes no body: only nothing or `{}` passes (a member sent here must not be silently ignored).
        const wire = body === absent ? undefined : JSON.stringify(body)
        const parsed: unknown = wire === undefined ? undefined : JSON.parse(wire)
        const emptyObject =
          typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) && Object.keys(parsed).length === 0
        // (A path segment longer than the router takes matches no route at all: 404 first.)
        const routed = !(response.status === 404 && response.text.includes("No route matches"))
        if (wire !== undefined && !emptyObject && routed) {
          assert.strictEqual(response.status, 400, response.text)
          assert.include(String(problemBody(response).detail), "takes no request body")
          return
        }
        if (to._tag === "Own") {
          assert.strictEqual(response.status, 200, response.text)
          const secret = decoded(EndpointSecret, response)
          assert.match(secret.secret, /^whsec_/)
          assert.isNotNull(secret.previousSecret)
        } else {
          assert.strictEqual(response.status, 404, response.text)
        }
      }),
    propertyOptions(150)
  )

  it.effect.prop(
    "POST /v1/deliveries/:id/retry: never a 5xx; only the tenant's own delivery, returned as the contract says",
    [target, optional(anything)],
    ([to, body]) =>
      Effect.gen(function* () {
        const { apiKey, deliveryId, foreignDeliveryId } = yield* Fixture
        const id = to._tag === "Own" ? deliveryId : to._tag === "Foreign" ? foreignDeliveryId : to.segment
        const response = sound(yield* request(`/v1/deliveries/${id}/retry`, postWith(apiKey, body)), { id, body })
        if (refusedAsBody(response, body)) return
        if (to._tag === "Own") {
          // Pending (the worker is off): already queued, returned unchanged.
          assert.strictEqual(response.status, 202, response.text)
          const delivery = decoded(DeliverySchema, response)
          assert.deepStrictEqual([delivery.id, delivery.status, delivery.attemptCount], [deliveryId, "pending", 0])
        } else {
          assertNotFound(response, to)
        }
      }),
    propertyOptions(150)
  )

  it.effect.prop(
    "DELETE /v1/events/:id/data: never a 5xx; only the tenant's own event, expunged, 404 for any other id",
    [target, optional(anything)],
    ([to, body]) =>
      Effect.gen(function* () {
        const { apiKey, expungedEventId, foreignEventId, foreignApiKey } = yield* Fixture
        const id = to._tag === "Own" ? expungedEventId : to._tag === "Foreign" ? foreignEventId : to.segment
        const options: RequestOptions = { method: "DELETE", bearer: apiKey, ...(body === absent ? {} : { json: body }) }
        const response = sound(yield* request(`/v1/events/${id}/data`, options), { id, body })
        if (refusedAsBody(response, body)) return
        if (to._tag === "Own") {
          assert.strictEqual(response.status, 200, response.text)
          const event = decoded(EventSchema, response)
          assert.deepStrictEqual([event.id, event.data], [expungedEventId, null])
          assert.isNotNull(event.expungedAt)
        } else {
          assertNotFound(response, to)
        }
        // Never the other tenant's: its event keeps its data whatever was asked here.
        const foreign = yield* request(`/v1/events/${foreignEventId}`, { bearer: foreignApiKey })
        assert.deepStrictEqual(decoded(EventSchema, foreign).data, { secret: "s" })
      }),
    propertyOptions(150)
  )

  it.effect.prop(
    "POST /v1/endpoints/:id/test: never a 5xx; a codex.test delivery to the tenant's own endpoint, 404 for any other",
    [target, optional(anything)],
    ([to, body]) =>
      Effect.gen(function* () {
        const { apiKey, endpointId, foreignEndpointId } = yield* Fixture
        const id = to._tag === "Own" ? endpointId : to._tag === "Foreign" ? foreignEndpointId : to.segment
        const response = sound(yield* request(`/v1/endpoints/${id}/test`, postWith(apiKey, body)), { id, body })
        if (refusedAsBody(response, body)) return
        if (to._tag === "Own") {
          assert.strictEqual(response.status, 202, response.text)
          const delivery = decoded(DeliverySchema, response)
          assert.deepStrictEqual([delivery.endpointId, delivery.status], [endpointId, "pending"])
        } else {
          assertNotFound(response, to)
        }
      }),
    propertyOptions(60)
  )

  it.effect.prop(
    "POST /v1/endpoints/:id/recover: never a 5xx; a count for the tenant's own endpoint, 404 for any other",
    [target, recoverRequest],
    ([to, { body, valid }]) =>
      Effect.gen(function* () {
        const { apiKey, endpointId, foreignEndpointId } = yield* Fixture
        const id = to._tag === "Own" ? endpointId : to._tag === "Foreign" ? foreignEndpointId : to.segment
        const response = sound(yield* request(`/v1/endpoints/${id}/recover`, { bearer: apiKey, json: body }), {
          id,
          body
        })
        if (response.status === 202) {
          assert.strictEqual(to._tag, "Own", response.text)
          assert.isAtLeast(decoded(Recovered, response).queued, 0)
          return
        }
        if (to._tag === "Own") {
          assert.isFalse(valid, `a well-formed since is never refused: ${response.text}`)
          assert.oneOf(response.status, [400, 413], response.text)
        } else if (response.status !== 400 && response.status !== 413) {
          assertNotFound(response, to)
        }
      }),
    propertyOptions(150)
  )

  it.effect.prop(
    "GET /v1/endpoints/:id/stats: never a 5xx; stats of the tenant's own endpoint for a past `since`, else 400 or 404",
    [target, statsQuery],
    ([to, { query, since }]) =>
      Effect.gen(function* () {
        const { apiKey, endpointId, foreignEndpointId } = yield* Fixture
        const id = to._tag === "Own" ? endpointId : to._tag === "Foreign" ? foreignEndpointId : to.segment
        const response = sound(yield* request(`/v1/endpoints/${id}/stats${query}`, { bearer: apiKey }), { id, query })
        if (response.status === 200) {
          assert.strictEqual(to._tag, "Own", response.text)
          const stats = decoded(EndpointStats, response)
          assert.strictEqual(stats.endpointId, endpointId)
          if (since !== undefined) assert.strictEqual(Date.parse(stats.since), Date.parse(since))
          assert.isAtMost(Date.parse(stats.since), Date.parse(stats.until))
          return
        }
        if (to._tag === "Own") {
          // Refused only when `since` is not one, or is in the future.
          assert.strictEqual(response.status, 400, response.text)
          if (since !== undefined) assert.isAbove(Date.parse(since), Date.now() - 60_000, response.text)
        } else if (response.status !== 400) {
          assertNotFound(response, to)
        }
      }),
    propertyOptions(150)
  )

  it.effect.prop(
    "PATCH /admin/tenants/:id: never a 5xx; an existing tenant changes exactly as sent, any other id is 404",
    [target, tenantUpdateBody],
    ([to, body]) =>
      Effect.gen(function* () {
        const { adminTenantId } = yield* Fixture
        const id =
          to._tag === "Own" ? adminTenantId : to._tag === "Foreign" ? "ten_0000000000000000000000000Z" : to.segment
        const response = sound(yield* request(`/admin/tenants/${id}`, { method: "PATCH", json: body }), { id, body })
        if (response.status !== 200) {
          if (to._tag === "Own") assert.oneOf(response.status, [400, 413, 422], response.text)
          else if (response.status !== 400 && response.status !== 413) assertNotFound(response, to)
          return
        }
        assert.strictEqual(to._tag, "Own")
        const updated = decoded(TenantSchema, response)
        assert.strictEqual(updated.id, adminTenantId)
        if (body.name !== undefined) assert.strictEqual(updated.name, body.name)
        if (body.rateLimit !== undefined) assert.deepStrictEqual(updated.rateLimit, body.rateLimit)
        if (body.retentionSeconds !== undefined) assert.strictEqual(updated.retentionSeconds, body.retentionSeconds)
        if (body.strictEventTypes !== undefined) assert.strictEqual(updated.strictEventTypes, body.strictEventTypes)
        const read = sound(yield* request(`/admin/tenants/${id}`), { id, body })
        const { apiKeys: _, deletion: __, ...stored } = JSON.parse(read.text) as Record<string, unknown>
        assert.deepStrictEqual(stored, JSON.parse(response.text))
      }),
    propertyOptions(150)
  )

  it.effect.prop(
    "POST /admin/tenants/:id/api-keys: never a 5xx; a working key for an existing tenant, 404 for any other id",
    [target, optional(anything)],
    ([to, body]) =>
      Effect.gen(function* () {
        const { keysTenantId } = yield* Fixture
        const id =
          to._tag === "Own" ? keysTenantId : to._tag === "Foreign" ? "ten_0000000000000000000000000Z" : to.segment
        const response = sound(yield* request(`/admin/tenants/${id}/api-keys`, postWith(undefined, body)), {
          id,
          body
        })
        if (refusedAsBody(response, body)) return
        if (to._tag !== "Own") {
          assertNotFound(response, to)
          return
        }
        assert.strictEqual(response.status, 201, response.text)
        const issued = decoded(IssuedApiKey, response)
        assert.match(issued.key, /^ck_/)
        assert.isTrue(issued.key.startsWith(issued.prefix))
        const authenticated = sound(yield* request("/v1/endpoints", { bearer: issued.key }), { id, body })
        assert.strictEqual(authenticated.status, 200, authenticated.text)
      }),
    propertyOptions(100)
  )

  it.effect.prop(
    "POST /v1/api-keys: never a 5xx; a working key exactly for a valid body, 422 for an expiry in the past",
    [apiKeyBody],
    ([body]) =>
      Effect.gen(function* () {
        const { keysApiKey } = yield* Fixture
        const response = sound(yield* request("/v1/api-keys", { bearer: keysApiKey, json: body }), body)
        const wellFormed = Schema.is(CreateApiKey)(body) && !("extra" in body)
        const expiry = typeof body.expiresAt === "string" ? Date.parse(body.expiresAt) : undefined
        if (response.status !== 201) {
          assert.oneOf(response.status, [400, 413, 422], response.text)
          // A body the schema takes, whose expiry (if any) is well in the future, is never refused.
          assert.isFalse(wellFormed && (expiry === undefined || expiry > Date.now() + 60_000), response.text)
          if (response.status === 422) assert.isTrue(wellFormed && expiry !== undefined && expiry <= Date.now())
          return
        }
        assert.isTrue(wellFormed, response.text)
        const issued = decoded(CreatedApiKey, response)
        assert.strictEqual(issued.name, body.name)
        assert.strictEqual(issued.scope, body.scope ?? "full")
        assert.strictEqual(issued.expiresAt === null ? undefined : Date.parse(issued.expiresAt), expiry)
        const listed = sound(yield* request("/v1/api-keys?limit=1", { bearer: issued.key }), body)
        assert.strictEqual(listed.status, 200, listed.text)
        assert.deepStrictEqual(
          Schema.decodeUnknownSync(Schema.Array(ApiKeyInfo))(JSON.parse(listed.text).data)[0]?.id,
          issued.id
        )
      }),
    propertyOptions(150)
  )

  it.effect.prop(
    "DELETE /v1/api-keys/:id: never a 5xx; a key of the tenant is revoked (204), any other id is 404",
    [target],
    ([to]) =>
      Effect.gen(function* () {
        const { keysApiKey, foreignKeyId } = yield* Fixture
        let id = to._tag === "Foreign" ? foreignKeyId : to._tag === "Raw" ? to.segment : ""
        if (to._tag === "Own") {
          const issued = yield* request("/v1/api-keys", { bearer: keysApiKey, json: { name: "fuzz revoke" } })
          id = decoded(CreatedApiKey, sound(issued, to)).id
        }
        const response = sound(yield* request(`/v1/api-keys/${id}`, { method: "DELETE", bearer: keysApiKey }), id)
        if (to._tag === "Own") assert.strictEqual(response.status, 204, response.text)
        else assertNotFound(response, to)
      }),
    propertyOptions(100)
  )

  it.effect.prop(
    "DELETE /admin/tenants/:id: never a 5xx; a tenant is marked deleting (202), any other id is 404",
    [target],
    ([to]) =>
      Effect.gen(function* () {
        const id =
          to._tag === "Own"
            ? (yield* createTenant("Fuzz deletion")).tenantId
            : to._tag === "Foreign"
              ? "ten_0000000000000000000000000Z"
              : to.segment
        const response = sound(yield* request(`/admin/tenants/${id}`, { method: "DELETE" }), id)
        if (to._tag !== "Own") {
          if (response.status !== 400) assertNotFound(response, to)
          return
        }
        assert.strictEqual(response.status, 202, response.text)
        assert.strictEqual(decoded(TenantDetail, response).status, "deleting")
      }),
    propertyOptions(100)
  )

  it.effect.prop(
    "GET /admin/tenants/:id/api-keys: never a 5xx; the tenant's keys, 404 for any other id",
    [target],
    ([to]) =>
      Effect.gen(function* () {
        const { keysTenantId } = yield* Fixture
        const id =
          to._tag === "Own" ? keysTenantId : to._tag === "Foreign" ? "ten_0000000000000000000000000Z" : to.segment
        const response = sound(yield* request(`/admin/tenants/${id}/api-keys?limit=2`), id)
        if (to._tag !== "Own") {
          if (response.status !== 400) assertNotFound(response, to)
          return
        }
        assert.strictEqual(response.status, 200, response.text)
        assert.isAtLeast(Schema.decodeUnknownSync(Schema.Array(ApiKeyInfo))(JSON.parse(response.text).data).length, 1)
      }),
    propertyOptions(100)
  )

  it.effect.prop(
    "raw bodies and content types on every write route: never a 5xx, every 4xx a problem",
    [rawBody, contentType, intBetween(0, 11)],
    ([raw, type, route]) =>
      Effect.gen(function* () {
        const { apiKey, endpointId, patchedEndpointId, deliveryId, adminTenantId, expungedEventId } = yield* Fixture
        const routes: ReadonlyArray<readonly [string, string]> = [
          ["POST", "/v1/events"],
          ["POST", "/v1/endpoints"],
          ["PATCH", `/v1/endpoints/${patchedEndpointId}`],
          ["POST", "/admin/tenants"],
          ["POST", `/v1/endpoints/${endpointId}/secret/rotate`],
          ["POST", `/v1/deliveries/${deliveryId}/retry`],
          ["POST", `/v1/endpoints/${endpointId}/recover`],
          ["POST", `/v1/endpoints/${endpointId}/test`],
          ["PATCH", `/admin/tenants/${adminTenantId}`],
          ["POST", `/admin/tenants/${adminTenantId}/api-keys`],
          ["DELETE", `/v1/events/${expungedEventId}/data`],
          ["POST", "/v1/api-keys"]
        ]
        const [method, path] = routes[route] ?? ["POST", "/v1/events"]
        const response = yield* request(path, { method, bearer: apiKey, raw, contentType: type })
        sound(response, { method, path, raw: typeof raw === "string" ? raw.slice(0, 300) : [...raw], type })
      }),
    propertyOptions(200)
  )

  it.effect("the documented limits: data depth, NUL and unpaired surrogates, occurredAt offsets and calendar", () =>
    Effect.gen(function* () {
      const { apiKey } = yield* Fixture
      const publish = (body: Record<string, unknown>) => request("/v1/events", { bearer: apiKey, json: body })
      const refused = (response: WireResponse, path: ReadonlyArray<string>) =>
        assert.deepStrictEqual(errorPaths(expectProblem(response, 400)), [path])
      const type = "fuzz.limits"

      // The object itself is level 1: `{a: [[...1 (63 arrays)...]]}` is 64 levels deep.
      assert.strictEqual((yield* publish({ type, data: { a: deepArray(maxDataDepth - 1) } })).status, 202)
      assert.strictEqual((yield* publish({ type, data: { a: deepObject(maxDataDepth - 1) } })).status, 202)
      refused(yield* publish({ type, data: { a: deepArray(maxDataDepth) } }), ["payload", "data"])
      refused(yield* publish({ type, data: { a: deepObject(maxDataDepth) } }), ["payload", "data"])
      refused(yield* request("/v1/events", { bearer: apiKey, raw: deepRaw(100_000) }), ["payload", "data"])

      for (const data of [{ a: "\u0000" }, { "a\u0000": 1 }, { a: ["\ud800"] }, { "\udc00": null }]) {
        refused(yield* publish({ type, data }), ["payload", "data"])
      }
      assert.strictEqual((yield* publish({ type, data: { a: "\ud83d\ude00", "\u00e9": "\\u0000" } })).status, 202)

      for (const occurredAt of [
        "2026-01-01T00:00:00+14:00",
        "2026-01-01T00:00:00-14:00",
        "1900-01-01T00:00:00Z",
        "1900-01-01T00:00:00-01:00",
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59+14:00"
      ]) {
        assert.strictEqual((yield* publish({ type, data: {}, occurredAt })).status, 202, occurredAt)
      }
      for (const occurredAt of [
        "2026-01-01T00:00:00+14:01",
        "2026-01-01T00:00:00+20:00",
        "2026-02-30T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "1899-12-31T23:59:59Z",
        "1900-01-01T00:00:00+00:01",
        // Instants in the year 10000, however they are spelled: they would be stored as +010000.
        "9999-12-31T23:59:59-14:00",
        "9999-12-31T23:59:59.001Z",
        "9999-12-31T23:00:00-01:00"
      ]) {
        refused(yield* publish({ type, data: {}, occurredAt }), ["payload", "occurredAt"])
      }
    })
  )

  it.effect("those limits are documented in /openapi.json, with the fields' descriptions and examples", () =>
    Effect.gen(function* () {
      const response = yield* request("/openapi.json")
      assert.strictEqual(response.status, 200)
      type JsonSchemaObject = {
        readonly description?: string
        readonly examples?: ReadonlyArray<unknown>
        readonly format?: string
        readonly propertyNames?: unknown
      }
      const spec = JSON.parse(response.text) as {
        readonly components: {
          readonly schemas: Record<string, { readonly properties: Record<string, JsonSchemaObject> }>
        }
      }
      const createEndpoint = spec.components.schemas.CreateEndpoint?.properties ?? {}
      const publishEvent = spec.components.schemas.PublishEvent?.properties ?? {}
      assert.match(createEndpoint.url?.description ?? "", /2 KiB/)
      assert.isNotEmpty(createEndpoint.url?.examples)
      assert.match(createEndpoint.metadata?.description ?? "", /keys 1\.\.64/)
      assert.deepStrictEqual(createEndpoint.metadata?.propertyNames, { type: "string", minLength: 1, maxLength: 64 })
      assert.match(publishEvent.data?.description ?? "", new RegExp(`${maxDataDepth} levels.*NUL`))
      assert.strictEqual(publishEvent.occurredAt?.format, "date-time")
      assert.match(publishEvent.occurredAt?.description ?? "", /±14:00/)
      // The delivery controls (issue 20): their rules and an example each.
      const updateEndpoint = spec.components.schemas.UpdateEndpoint?.properties ?? {}
      assert.match(createEndpoint.headers?.description ?? "", /Refused \(422\).*webhook-\*/)
      assert.isNotEmpty(createEndpoint.headers?.examples)
      assert.match(createEndpoint.filter?.description ?? "", /\$startsWith.*\$exists/)
      assert.isNotEmpty(createEndpoint.filter?.examples)
      assert.isDefined(updateEndpoint.headers)
      assert.isDefined(updateEndpoint.filter)
      assert.isDefined(updateEndpoint.rateLimit)
      assert.match(JSON.stringify(createEndpoint.rateLimit ?? {}), /deliveries per second/)
    })
  )

  it.effect(
    "every tricky value in every field of an otherwise valid body: a 2xx storing it as sent, or a 4xx",
    () =>
      Effect.gen(function* () {
        const { apiKey, patchedEndpointId } = yield* Fixture
        const validEvent = { type: "fuzz.tricky", data: { ok: true }, occurredAt: "2026-01-01T00:00:00Z" }
        const validEndpoint = {
          url: "https://93.184.216.34/hook",
          description: "d",
          eventTypes: ["a.*"],
          enabled: true,
          metadata: { k: "v" }
        }
        const cases: Array<{
          readonly path: string
          readonly method: string
          readonly body: Record<string, unknown>
          readonly field: string
          readonly stored: (response: WireResponse) => unknown
        }> = []
        for (const value of [...trickyValues, ...trickyDates]) {
          for (const field of Object.keys(validEvent)) {
            cases.push({
              path: "/v1/events",
              method: "POST",
              body: { ...validEvent, [field]: value },
              field,
              stored: (response) => decoded(PublishedEvent, response).event[field as "type" | "data"]
            })
          }
          for (const field of Object.keys(validEndpoint)) {
            const stored = (response: WireResponse) =>
              decoded(EndpointSchema, response)[field as keyof typeof validEndpoint]
            cases.push({
              path: "/v1/endpoints",
              method: "POST",
              body: { ...validEndpoint, [field]: value },
              field,
              stored
            })
            cases.push({
              path: `/v1/endpoints/${patchedEndpointId}`,
              method: "PATCH",
              body: { [field]: value },
              field,
              stored
            })
          }
          cases.push({
            path: "/admin/tenants",
            method: "POST",
            body: { name: value },
            field: "name",
            stored: (response) => decoded(CreatedTenant, response).tenant.name
          })
        }
        // Every case runs; the failures are reported together.
        const failures: Array<string> = []
        const accepted = new Set<string>()
        for (const { path, method, body, field, stored } of cases) {
          const response = yield* request(path, { method, bearer: apiKey, json: body })
          try {
            sound(response, { path, method, body })
            if (response.status >= 400) continue
            accepted.add(`${method} ${path.replace(patchedEndpointId, ":id")} ${field}`)
            if (field === "occurredAt") {
              // Stored as the same instant (normalised to UTC).
              const sent = Date.parse(String(body[field]))
              assert.approximately(Date.parse(String(decoded(PublishedEvent, response).event.occurredAt)), sent, 1)
            } else {
              assert.deepStrictEqual(stored(response), JSON.parse(JSON.stringify(body[field])))
            }
          } catch (error) {
            failures.push(`${method} ${path} ${field}: ${String(error).slice(0, 600)}`)
          }
        }
        assert.deepStrictEqual(failures, [])
        // The storage check ran: some tricky value is accepted in every field (refusing them all would pass it).
        assert.includeMembers(
          [...accepted],
          [
            "POST /v1/events type",
            "POST /v1/events data",
            "POST /v1/events occurredAt",
            "POST /v1/endpoints description",
            "POST /v1/endpoints eventTypes",
            "POST /v1/endpoints metadata",
            "PATCH /v1/endpoints/:id eventTypes",
            "PATCH /v1/endpoints/:id metadata",
            "POST /admin/tenants name"
          ]
        )
      }),
    // Hundreds of requests one after another: minutes on a loaded machine, never a hang.
    180_000
  )

  it.effect.prop(
    "path spellings: every spelling the router serves as a tenant route counts against the tenant",
    [constantFrom(["/v1/events", "/v1/endpoints"]), spellingChoices],
    ([path, choices]) =>
      Effect.gen(function* () {
        const { apiKey } = yield* Fixture
        const spelled = respell(path, choices)
        const respelled = sound(yield* request(spelled, { bearer: apiKey }), spelled)
        // Served by the same route (a page of the same list), counted in the tenant's bucket, not the address's.
        assert.strictEqual(respelled.status, 200, `${spelled}: ${respelled.text}`)
        assert.match(respelled.headers.get("ratelimit-policy") ?? "", /^"tenant";/, spelled)
        assert.match(respelled.headers.get("ratelimit") ?? "", /^"tenant";r=\d+;t=\d+$/, spelled)
      }),
    propertyOptions(100)
  )

  it.effect.prop(
    "POST /v1/event-types: never a 5xx; 201 only for a valid body, the type then readable as created",
    [eventTypeBody],
    ([body]) =>
      Effect.gen(function* () {
        const { catalogApiKey } = yield* Fixture
        const response = sound(yield* request("/v1/event-types", { bearer: catalogApiKey, json: body }), body)
        if (response.status !== 201) {
          assert.oneOf(response.status, [400, 409, 413, 422], response.text)
          return
        }
        assert.isTrue(Schema.is(CreateEventType)(body) && !("extra" in body), response.text)
        const created = decoded(CatalogEventType, response)
        const read = sound(yield* request(`/v1/event-types/${created.name}`, { bearer: catalogApiKey }), body)
        assert.deepStrictEqual(decoded(CatalogEventType, read), created)
        // Published data is checked against the schema: never a 5xx whatever the data.
        const published = yield* request("/v1/events", {
          bearer: catalogApiKey,
          json: { type: created.name, data: created.examples[0] ?? {} }
        })
        sound(published, body)
        if (created.archived) assert.strictEqual(published.status, 422, published.text)
        else if (created.examples.length > 0) assert.strictEqual(published.status, 202, published.text)
      }),
    propertyOptions(150)
  )

  it.effect.prop(
    "PATCH, GET, DELETE /v1/event-types/:name: never a 5xx; any body, any name",
    [
      oneOf<unknown>(eventTypeBody, anything),
      oneOf<string>(
        constantFrom(["fuzz.patched", "openapi.json", "%00", "x".repeat(300), ""]),
        Arbitrary.map(anyString, (s) => encodeURIComponent(s.toWellFormed()))
      )
    ],
    ([body, name]) =>
      Effect.gen(function* () {
        const { catalogApiKey } = yield* Fixture
        yield* request("/v1/event-types", { bearer: catalogApiKey, json: { name: "fuzz.patched" } })
        const path = `/v1/event-types/${name}`
        const patched = sound(yield* request(path, { method: "PATCH", bearer: catalogApiKey, json: body }), body)
        assert.oneOf(patched.status, [200, 400, 404, 405, 413, 415, 422], patched.text)
        if (patched.status === 200) decoded(CatalogEventType, patched)
        const read = sound(yield* request(path, { bearer: catalogApiKey }), name)
        assert.oneOf(read.status, [200, 404], read.text)
        const document = sound(yield* request("/v1/event-types/openapi.json", { bearer: catalogApiKey }), name)
        assert.strictEqual(document.status, 200, document.text)
        const deleted = sound(yield* request(path, { method: "DELETE", bearer: catalogApiKey }), name)
        assert.oneOf(deleted.status, [204, 400, 404, 405], deleted.text)
      }),
    propertyOptions(100)
  )

  it.effect.prop(
    "raw bodies and content types on the event-type write routes: never a 5xx, every 4xx a problem",
    [rawBody, contentType, intBetween(0, 1)],
    ([raw, type, route]) =>
      Effect.gen(function* () {
        const { catalogApiKey } = yield* Fixture
        const [method, path] = route === 0 ? ["POST", "/v1/event-types"] : ["PATCH", "/v1/event-types/fuzz.raw"]
        const response = yield* request(path, { method, bearer: catalogApiKey, raw, contentType: type })
        sound(response, { method, path, raw: typeof raw === "string" ? raw.slice(0, 300) : [...raw], type })
      }),
    propertyOptions(100)
  )

  it.effect.prop(
    "POST /v1/portal-sessions and /admin/tenants/:id/portal-sessions: never a 5xx; 201 only for a valid body, its token then works",
    [oneOf<unknown>(portalSessionBody, anything), intBetween(0, 1)],
    ([body, route]) =>
      Effect.gen(function* () {
        // The API-keys tenant: no other property sets its quota, and sessions change nothing the others read.
        const { keysApiKey, keysTenantId } = yield* Fixture
        const response = sound(
          route === 0
            ? yield* request("/v1/portal-sessions", { bearer: keysApiKey, json: body })
            : yield* request(`/admin/tenants/${keysTenantId}/portal-sessions`, { json: body }),
          body
        )
        const valid =
          body === null ||
          (typeof body === "object" &&
            !Array.isArray(body) &&
            Object.keys(body).every((key) => key === "readOnly" || key === "expiresIn") &&
            (!("readOnly" in body) || typeof body.readOnly === "boolean") &&
            (!("expiresIn" in body) || (Number.isSafeInteger(body.expiresIn) && Number(body.expiresIn) >= 1)))
        if (response.status !== 201) {
          assert.oneOf(response.status, [400, 413, 415, 422], response.text)
          if (response.status === 422)
            assert.isTrue(valid && Number((body as { expiresIn?: unknown }).expiresIn) > 3600)
          else assert.isFalse(valid, response.text)
          return
        }
        assert.isTrue(valid, response.text)
        const session = decoded(PortalSession, response)
        const token = session.url.slice(session.url.indexOf("#token=") + 7).split("&")[0] ?? ""
        assert.strictEqual(session.readOnly, (body as { readOnly?: boolean } | null)?.readOnly === true)
        assert.strictEqual((yield* request("/v1/endpoints?limit=1", { bearer: token })).status, 200)
        const write = sound(yield* request("/v1/portal-sessions", { bearer: token, json: {} }), body)
        assert.strictEqual(write.status, 403, write.text)
      }),
    propertyOptions(100)
  )

  it.effect.prop(
    "DELETE /v1/portal-sessions/:id and /admin/portal-sessions/:id: never a 5xx; 204 or 404, another tenant's 404",
    [
      oneOf<string>(
        constantFrom(["pss_01JD0000000000000000000000", "foreign", "%00", "x".repeat(300), ""]),
        Arbitrary.map(anyString, (s) => encodeURIComponent(s.toWellFormed()))
      ),
      intBetween(0, 1),
      optional(anything)
    ],
    ([raw, route, body]) =>
      Effect.gen(function* () {
        const { keysApiKey, foreignSessionId } = yield* Fixture
        const id = raw === "foreign" ? foreignSessionId : raw
        const options = { method: "DELETE", ...(body === absent ? {} : { json: body }) }
        const response = sound(
          route === 0
            ? yield* request(`/v1/portal-sessions/${id}`, { ...options, bearer: keysApiKey })
            : yield* request(`/admin/portal-sessions/${id}`, options),
          { id, body }
        )
        // The other tenant's session exists: only the admin may revoke it (and then it is 204 ever after).
        if (raw === "foreign" && route === 0) assert.oneOf(response.status, [400, 404], response.text)
        else assert.oneOf(response.status, [204, 400, 404, 405, 413, 415], response.text)
      }),
    propertyOptions(100)
  )

  it.effect.prop(
    "raw bodies and content types on the portal-session routes: never a 5xx, every 4xx a problem",
    [rawBody, contentType, intBetween(0, 1)],
    ([raw, type, route]) =>
      Effect.gen(function* () {
        const { keysApiKey, keysTenantId } = yield* Fixture
        const path = route === 0 ? "/v1/portal-sessions" : `/admin/tenants/${keysTenantId}/portal-sessions`
        const response = yield* request(path, { method: "POST", bearer: keysApiKey, raw, contentType: type })
        sound(response, { path, raw: typeof raw === "string" ? raw.slice(0, 300) : [...raw], type })
        assert.oneOf(response.status, [201, 400, 403, 413, 415, 422], response.text)
      }),
    propertyOptions(100)
  )

  it.effect("after all of it the server answers normally", () =>
    Effect.gen(function* () {
      const { apiKey } = yield* Fixture
      const { baseUrl } = yield* TestServer
      assert.match(baseUrl, /^http:\/\/127\.0\.0\.1:/)
      assert.strictEqual((yield* request("/livez")).status, 200)
      const response = yield* request("/v1/events", { bearer: apiKey, json: { type: "fuzz.done", data: { ok: true } } })
      assert.strictEqual(response.status, 202, response.text)
    })
  )
})

// -------------------------------------------------------------------------------------------------------------------
// Payload fidelity: generated JSON text, published, read back and delivered
// -------------------------------------------------------------------------------------------------------------------

interface FidelityFixtureShape {
  readonly apiKey: string
  /** The tenant's one endpoint: a receiver answering 204. */
  readonly receiver: Receiver
  readonly secret: string
}

class FidelityFixture extends Context.Service<FidelityFixture, FidelityFixtureShape>()("test/FuzzFidelityFixture") {}

const FidelityFixtureLive = Layer.effect(
  FidelityFixture,
  Effect.gen(function* () {
    const receiver = yield* makeReceiver((_, __, res) => answer(res, 204))
    const tenant = yield* createTenant("Fuzz fidelity")
    const api = yield* apiClient(tenant.apiKey)
    const endpoint = yield* api.endpoints.create({ payload: { url: receiver.url } })
    const { secret } = yield* api.endpoints.getSecret({ params: { id: endpoint.id } })
    return { apiKey: tenant.apiKey, receiver, secret }
  }).pipe(Effect.orDie)
)

// The worker on, polling often: every published event is delivered to the fixture's receiver.
const FidelityServer = FidelityFixtureLive.pipe(
  Layer.provideMerge(
    testServer({
      config: {
        delivery: fastWorker()
      }
    })
  )
)

layer(FidelityServer, { excludeTestServices: true, timeout: "60 seconds" })("fuzzing payload fidelity", (it) => {
  it.effect.prop(
    "generated data (any member order, number spelling, escapes, whitespace) comes back and is delivered as sent",
    [jsonObjectSource, Arbitrary.schema(Schema.Boolean)],
    ([data, dataFirst]) =>
      Effect.gen(function* () {
        const { apiKey, receiver, secret } = yield* FidelityFixture
        const type = "fuzz.fidelity"
        const body = dataFirst
          ? `{ "data" : ${data.wire} , "type" : "${type}" }`
          : `{"type":"${type}","data":${data.wire}}`
        const published = sound(yield* request("/v1/events", { bearer: apiKey, raw: body }), body)
        assert.strictEqual(published.status, 202, published.text)
        const event = decoded(PublishedEvent, published).event
        const eventText =
          `{"id":"${event.id}","type":"${type}","data":${data.minified},` +
          `"occurredAt":"${event.occurredAt}","createdAt":"${event.createdAt}","expungedAt":null}`
        assert.strictEqual(published.text, `{"event":${eventText},"deliveriesQueued":1}`)
        const read = sound(yield* request(`/v1/events/${event.id}`, { bearer: apiKey }), body)
        assert.strictEqual(read.text, eventText)
        const webhook = yield* webhookOf(receiver, event.id)
        assert.strictEqual(webhook.body, `{"type":"${type}","timestamp":"${event.occurredAt}","data":${data.minified}}`)
        new Webhook(secret).verify(webhook.body, verifyHeaders(webhook))
      }),
    propertyOptions(100)
  )
})

// -------------------------------------------------------------------------------------------------------------------
// The SSRF guard in production: transition addresses and ports
// -------------------------------------------------------------------------------------------------------------------

const productionAdminToken = "fuzz-production-admin-token"

class ProductionFixture extends Context.Service<ProductionFixture, FixtureShape>()("test/FuzzProductionFixture") {}

const ProductionFixtureLive = Layer.effect(
  ProductionFixture,
  Effect.gen(function* () {
    const tenant = yield* createTenant("Fuzz production tenant", { adminToken: productionAdminToken })
    const other = yield* createTenant("Fuzz production neighbour", { adminToken: productionAdminToken })
    const endpoint = (apiKey: string) =>
      Effect.map(request("/v1/endpoints", { bearer: apiKey, json: { url: "https://93.184.216.34/hook" } }), (r) => {
        assert.strictEqual(r.status, 201, r.text)
        return (JSON.parse(r.text) as { readonly id: string }).id
      })
    return {
      apiKey: tenant.apiKey,
      endpointId: yield* endpoint(tenant.apiKey),
      foreignEndpointId: yield* endpoint(other.apiKey)
    }
  })
)

// The production defaults: private networks refused, https required, one message for every refused destination. IP
// literals are judged without any network call; no name is generated here.
const ProductionServer = ProductionFixtureLive.pipe(
  Layer.provideMerge(
    testServer({
      config: {
        appEnv: "production",
        adminToken: Option.some(Redacted.make(productionAdminToken)),
        webhookAllowPrivateNetworks: false
      }
    })
  )
)

const refusedDestination = "The endpoint URL is not allowed: the destination is not permitted."

/** A port for the URL: none (the scheme's default), one of the allowed ones, or any. */
const urlPort = oneOf<number | undefined>(
  Arbitrary.Constant(undefined),
  constantFrom([80, 443, 1024, 8443, 65535]),
  intBetween(1, 1023),
  intBetween(1, 65535)
)
const portSuffix = (port: number | undefined) => (port === undefined ? "" : `:${port}`)
const allowedByDefault = (port: number | undefined) => port === undefined || port === 80 || port === 443 || port >= 1024

/** Public destinations in each form: IPv4, IPv6, and IPv6 carrying a public IPv4 address. */
const publicHost = constantFrom([
  "93.184.216.34",
  "[2606:4700:4700::1111]",
  "[::ffff:8.8.8.8]",
  "[64:ff9b::808:808]",
  "[2002:5db8:d822::1]"
])

/** Create, or update the fixture's endpoint, with `url`. */
const saveUrl = (fixture: FixtureShape, url: string, update: boolean) =>
  update
    ? request(`/v1/endpoints/${fixture.endpointId}`, { method: "PATCH", bearer: fixture.apiKey, json: { url } })
    : request("/v1/endpoints", { bearer: fixture.apiKey, json: { url } })

layer(ProductionServer, { excludeTestServices: true, timeout: "60 seconds" })(
  "fuzzing the SSRF guard (production configuration)",
  (it) => {
    it.effect.prop(
      "a non-public IPv4 target in any IPv6 transition form and spelling, on any port: 422, one message",
      [refusedIpv4, transitionKind, filler, spellingIndex, urlPort, Arbitrary.schema(Schema.Boolean)],
      ([v4, kind, free, index, port, update]) =>
        Effect.gen(function* () {
          const fixture = yield* ProductionFixture
          const spellings = ipv6Spellings(transitionBytes(kind, v4, free))
          const url = `https://[${spellings[index % spellings.length]}]${portSuffix(port)}/hook`
          const response = sound(yield* saveUrl(fixture, url, update), { url, kind, target: ipv4Text(v4) })
          assert.strictEqual(
            expectProblem(response, 422).detail,
            refusedDestination,
            `${kind} of ${ipv4Text(v4)}: ${url}`
          )
        }),
      propertyOptions(200)
    )

    it.effect.prop(
      "a public address on a random port: accepted on 80, 443 and 1024-65535, else 422 with the same message",
      [publicHost, urlPort, Arbitrary.schema(Schema.Boolean)],
      ([host, port, update]) =>
        Effect.gen(function* () {
          const fixture = yield* ProductionFixture
          const url = `https://${host}${portSuffix(port)}/hook`
          const response = sound(yield* saveUrl(fixture, url, update), { url })
          if (allowedByDefault(port)) {
            assert.strictEqual(response.status, update ? 200 : 201, `${url}: ${response.text}`)
            assert.strictEqual(decoded(EndpointSchema, response).url, url)
          } else {
            assert.strictEqual(expectProblem(response, 422).detail, refusedDestination, url)
          }
        }),
      propertyOptions(150)
    )

    it.effect.prop(
      "Codex-Tenant with the admin token, any value, any /v1 read: never a 5xx; no such tenant 404, empty 401",
      [
        oneOf<string>(anyString, constantFrom(["ten_00000000000000000000000000", "", " ", "ten_"])),
        constantFrom(["/v1/events", "/v1/endpoints", "/v1/deliveries", "/v1/event-types", "/v1/api-keys"])
      ],
      ([value, path]) =>
        Effect.gen(function* () {
          // Header values are visible ASCII and spaces, without leading or trailing whitespace (fetch trims them).
          const header = value.replaceAll(/[^\x21-\x7e ]/g, "").trim()
          const response = sound(
            yield* request(path, { bearer: productionAdminToken, headers: { "codex-tenant": header } }),
            { header, path }
          )
          if (header === "") assert.strictEqual(response.status, 401, response.text)
          else assert.strictEqual(response.status, 404, response.text)
        }),
      propertyOptions(100)
    )
  }
)
