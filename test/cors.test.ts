import { assert, describe, it, layer, type Vitest } from "@effect/vitest"
import { Effect, Option } from "effect"
import type { AppConfigShape } from "../services/AppConfig.ts"
import { makeCorsPolicy } from "../src/http/Cors.ts"
import { request, type WireResponse } from "./support/http.ts"
import type { TestDatabase } from "./support/testDatabase.ts"
import { type TestServer, testServer } from "./support/testServer.ts"

/**
 * CORS and security headers, per environment, on the wire. Each block runs the real server with its own
 * `APP_ENV` / `CORS_ORIGINS`; the edge middleware decides, so unknown routes and errors are covered too.
 */

const listed = "https://app.example.com"
const alsoListed = "http://localhost:5173"
const stranger = "https://evil.example.net"

const requestHeadersAsked = "authorization, content-type, idempotency-key, x-request-id, traceparent"
const requiredRequestHeaders = ["Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id", "traceparent"]
const requiredMethods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
const requiredExposed = [
  "X-Request-Id",
  "RateLimit",
  "RateLimit-Policy",
  "Retry-After",
  "Idempotent-Replayed",
  "Deprecation"
]

const get = (path: string, origin?: string) => request(path, origin === undefined ? {} : { headers: { origin } })

const preflight = (path: string, origin: string, method = "POST") =>
  request(path, {
    method: "OPTIONS",
    headers: {
      origin,
      "access-control-request-method": method,
      "access-control-request-headers": requestHeadersAsked
    }
  })

/** A comma-separated header as a lower-cased set. */
const listHeader = (headers: Headers, name: string): ReadonlySet<string> =>
  new Set(
    (headers.get(name) ?? "")
      .split(",")
      .map((item) => item.trim().toLowerCase())
      .filter((item) => item.length > 0)
  )

const assertIncludesAll = (headers: Headers, name: string, expected: ReadonlyArray<string>) => {
  const actual = listHeader(headers, name)
  for (const item of expected)
    assert.isTrue(actual.has(item.toLowerCase()), `${name} lacks ${item}: ${headers.get(name)}`)
}

const corsHeaderNames = (headers: Headers): ReadonlyArray<string> =>
  [...headers.keys()].filter((name) => name.startsWith("access-control-"))

type ServerTests = Vitest.MethodsNonLive<TestServer | TestDatabase>

/** The origin is allowed on an actual (non-preflight) response: echoed, with credentials, never `*`. */
const assertAllowed = (response: WireResponse, origin: string) => {
  assert.strictEqual(response.headers.get("access-control-allow-origin"), origin)
  assert.strictEqual(response.headers.get("access-control-allow-credentials"), "true")
  assertIncludesAll(response.headers, "access-control-expose-headers", requiredExposed)
  assert.isTrue(listHeader(response.headers, "vary").has("origin"), "Vary: Origin")
}

const assertPreflightAllowed = (response: WireResponse, origin: string) => {
  assert.strictEqual(response.status, 204)
  assert.strictEqual(response.text, "")
  assert.strictEqual(response.headers.get("access-control-allow-origin"), origin)
  assert.strictEqual(response.headers.get("access-control-allow-credentials"), "true")
  assertIncludesAll(response.headers, "access-control-allow-methods", requiredMethods)
  assertIncludesAll(response.headers, "access-control-allow-headers", requiredRequestHeaders)
  const maxAge = Number(response.headers.get("access-control-max-age"))
  assert.isTrue(Number.isInteger(maxAge) && maxAge > 0, `max-age: ${response.headers.get("access-control-max-age")}`)
  assert.isTrue(listHeader(response.headers, "vary").has("origin"), "Vary: Origin")
}

/** Not a single CORS header: browsers then refuse the cross-origin read. */
const assertRefused = (response: WireResponse) => assert.deepStrictEqual(corsHeaderNames(response.headers), [])

const assertSecurityHeaders = (response: WireResponse, appEnv: AppConfigShape["appEnv"]) => {
  assert.strictEqual(response.headers.get("x-content-type-options"), "nosniff")
  assert.strictEqual(response.headers.get("referrer-policy"), "no-referrer")
  assert.strictEqual(response.headers.get("cache-control"), "no-store")
  const hsts = response.headers.get("strict-transport-security")
  if (appEnv === "production") {
    assert.isNotNull(hsts)
    const maxAge = Number(/max-age=(\d+)/.exec(hsts ?? "")?.[1])
    assert.isAtLeast(maxAge, 31_536_000, `HSTS max-age of at least a year: ${hsts}`)
  } else {
    assert.isNull(hsts, "no HSTS outside production")
  }
}

/** Checks that must hold for every origin policy: no wildcard with credentials, no CORS for same-origin requests. */
const commonChecks = (it: ServerTests) => {
  it.effect("never answers `*`, and a request without Origin gets no CORS headers", () =>
    Effect.gen(function* () {
      for (const origin of [listed, alsoListed, stranger]) {
        for (const response of [yield* get("/livez", origin), yield* preflight("/livez", origin)]) {
          assert.notStrictEqual(response.headers.get("access-control-allow-origin"), "*")
        }
      }
      assertRefused(yield* get("/livez"))
      assertRefused(yield* get("/no/such/route"))
    })
  )
}

/** Security headers on a 2xx, a 404, a wrong method and a preflight. */
const securityChecks = (it: ServerTests, appEnv: AppConfigShape["appEnv"]) => {
  it.effect(`security headers on 2xx and 4xx (${appEnv})`, () =>
    Effect.gen(function* () {
      const ok = yield* get("/livez")
      assert.strictEqual(ok.status, 200)
      assertSecurityHeaders(ok, appEnv)
      const notFound = yield* get("/no/such/route", stranger)
      assert.strictEqual(notFound.status, 404)
      assertSecurityHeaders(notFound, appEnv)
      const wrongMethod = yield* request("/livez", { method: "DELETE" })
      assert.strictEqual(wrongMethod.status, 405)
      assertSecurityHeaders(wrongMethod, appEnv)
      assertSecurityHeaders(yield* preflight("/livez", listed), appEnv)
      assertSecurityHeaders(yield* preflight("/livez", stranger), appEnv)
    })
  )
}

const serverWith = (config: Partial<AppConfigShape>) => testServer({ config })

layer(serverWith({ appEnv: "development", corsOrigins: Option.none() }), { excludeTestServices: true })(
  "development, CORS_ORIGINS unset: any origin",
  (it) => {
    it.effect("any origin is echoed back with credentials, on success and on errors", () =>
      Effect.gen(function* () {
        for (const origin of [listed, stranger, "http://localhost:3001"]) {
          const ok = yield* get("/livez", origin)
          assert.strictEqual(ok.status, 200)
          assertAllowed(ok, origin)
          const notFound = yield* get("/no/such/route", origin)
          assert.strictEqual(notFound.status, 404)
          assertAllowed(notFound, origin)
        }
      })
    )

    it.effect("preflights from any origin answer 204 with methods, request headers and max-age", () =>
      Effect.gen(function* () {
        assertPreflightAllowed(yield* preflight("/livez", stranger), stranger)
        // Preflights are answered at the edge, for any path (the route may not exist for OPTIONS).
        assertPreflightAllowed(yield* preflight("/anything/at/all", listed, "DELETE"), listed)
      })
    )

    commonChecks(it)
    securityChecks(it, "development")
  }
)

describe("development, CORS_ORIGINS set", () => {
  // The policy alone (a server per case is slow on PGlite): the wire behaviour is the same as in staging below.
  it("allows only the listed origins", () => {
    const policy = makeCorsPolicy("development", Option.some([listed]))
    assert.strictEqual(policy.responseHeaders(listed)?.["access-control-allow-origin"], listed)
    assert.strictEqual(policy.preflightHeaders(listed)?.["access-control-allow-origin"], listed)
    assert.isUndefined(policy.responseHeaders(stranger))
    assert.isUndefined(policy.preflightHeaders(stranger))
    assert.isUndefined(policy.responseHeaders(undefined))
  })
})

layer(serverWith({ appEnv: "staging", corsOrigins: Option.some([listed, alsoListed]) }), { excludeTestServices: true })(
  "staging, CORS_ORIGINS set: only the listed origins",
  (it) => {
    it.effect("listed origins are allowed on success, errors and preflights", () =>
      Effect.gen(function* () {
        for (const origin of [listed, alsoListed]) {
          const ok = yield* get("/livez", origin)
          assert.strictEqual(ok.status, 200)
          assertAllowed(ok, origin)
          const notFound = yield* get("/no/such/route", origin)
          assert.strictEqual(notFound.status, 404)
          assertAllowed(notFound, origin)
          assertPreflightAllowed(yield* preflight("/livez", origin), origin)
        }
      })
    )

    it.effect("any other origin gets no access-control-* header at all", () =>
      Effect.gen(function* () {
        // Exact matches only: no prefix, suffix, scheme or port games.
        const others = [stranger, `${listed}.evil.example.net`, "http://app.example.com", `${listed}:8443`, "null"]
        for (const origin of others) {
          const ok = yield* get("/livez", origin)
          assert.strictEqual(ok.status, 200)
          assertRefused(ok)
          const notFound = yield* get("/no/such/route", origin)
          assert.strictEqual(notFound.status, 404)
          assertRefused(notFound)
          assertRefused(yield* preflight("/livez", origin))
        }
      })
    )

    commonChecks(it)
    securityChecks(it, "staging")
  }
)

layer(serverWith({ appEnv: "staging", corsOrigins: Option.none() }), { excludeTestServices: true })(
  "staging, CORS_ORIGINS unset: no cross-origin access",
  (it) => {
    it.effect("no origin is allowed, on preflights, successes or errors", () =>
      Effect.gen(function* () {
        for (const origin of [listed, stranger, "http://localhost:3000"]) {
          assertRefused(yield* get("/livez", origin))
          assertRefused(yield* get("/no/such/route", origin))
          assertRefused(yield* preflight("/livez", origin))
        }
      })
    )
  }
)

layer(serverWith({ appEnv: "production", corsOrigins: Option.some([listed]) }), { excludeTestServices: true })(
  "production, CORS_ORIGINS set: only the listed origins, with HSTS",
  (it) => {
    it.effect("the listed origin is allowed, any other gets no CORS headers", () =>
      Effect.gen(function* () {
        assertAllowed(yield* get("/livez", listed), listed)
        assertAllowed(yield* get("/no/such/route", listed), listed)
        assertPreflightAllowed(yield* preflight("/livez", listed), listed)
        for (const origin of [stranger, alsoListed]) {
          assertRefused(yield* get("/livez", origin))
          assertRefused(yield* get("/no/such/route", origin))
          assertRefused(yield* preflight("/livez", origin))
        }
      })
    )

    commonChecks(it)
    securityChecks(it, "production")
  }
)
