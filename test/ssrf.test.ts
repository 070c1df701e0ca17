import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Fiber, Layer, Option, Redacted } from "effect"
import { TestClock } from "effect/testing"
import { appConfigTest } from "../layers/AppConfigLive.ts"
import { makeUrlPolicy, type Resolver, UrlPolicyLive } from "../layers/UrlPolicyLive.ts"
import type { AppConfigShape, AppEnv } from "../services/AppConfig.ts"
import { AppConfig } from "../services/AppConfig.ts"
import { UrlPolicy, type UrlPolicyShape } from "../services/UrlPolicy.ts"
import { apiClient, createTenant, errorPaths, expectProblem, request } from "./support/http.ts"
import { TestServer, testServer, type WireResponse } from "./support/testServer.ts"

/**
 * The SSRF guard and URL rules for webhook endpoints. Nothing here connects anywhere: IP literals are judged without
 * a network call, and the only name ever resolved is `localhost`. URLs on 127.0.0.1 that are accepted are never
 * called (there is no delivery engine in these tests).
 */

/** Each refused URL with what it is; every one names a non-public address, however it is spelled. */
const refusedUrls: ReadonlyArray<readonly [string, string]> = [
  ["loopback", "http://127.0.0.1/hook"],
  ["loopback, other port and address", "https://127.8.9.10:8443/hook"],
  ["loopback as a decimal integer", "http://2130706433/hook"],
  ["loopback in hex", "http://0x7f.1/hook"],
  ["loopback in octal", "http://017700000001/hook"],
  ["loopback, short form", "http://127.1/hook"],
  ["loopback with a trailing dot", "http://127.0.0.1./hook"],
  ["loopback in full-width digits", "http://１２７.０.０.１/hook"],
  ["loopback behind userinfo", "http://93.184.216.34@127.0.0.1/hook"],
  ["0.0.0.0", "http://0.0.0.0/hook"],
  ["0 (this host)", "http://0/hook"],
  ["10.0.0.0/8", "http://10.0.0.1/hook"],
  ["10.0.0.0/8, top", "https://10.255.255.254/hook"],
  ["172.16.0.0/12", "http://172.16.0.1/hook"],
  ["192.168.0.0/16", "http://192.168.1.1/hook"],
  ["CGNAT 100.64.0.0/10", "http://100.64.0.1/hook"],
  ["cloud metadata", "http://169.254.169.254/latest/meta-data/"],
  ["IPv6 loopback", "http://[::1]/hook"],
  ["IPv6 loopback, long form", "http://[0:0:0:0:0:0:0:1]:8080/hook"],
  ["IPv6 unspecified", "http://[::]/hook"],
  ["IPv6 unique-local fc00::/7", "http://[fc00::1]/hook"],
  ["IPv6 unique-local fd00::/8", "https://[fd12:3456::1]/hook"],
  ["AWS IPv6 metadata", "http://[fd00:ec2::254]/latest/meta-data/"],
  ["IPv6 link-local", "http://[fe80::1]/hook"],
  ["IPv4-mapped loopback", "http://[::ffff:127.0.0.1]/hook"],
  ["IPv4-mapped loopback in hex", "http://[::ffff:7f00:1]/hook"],
  ["IPv4-mapped metadata", "http://[::ffff:169.254.169.254]/hook"],
  ["IPv4-compatible loopback (deprecated)", "http://[::127.0.0.1]/hook"],
  ["NAT64 of the metadata address", "http://[64:ff9b::a9fe:a9fe]/hook"],
  ["a name resolving to 127.0.0.1", "http://localhost/hook"],
  ["a name resolving to 127.0.0.1, with a port", "http://localhost:3000/hook"],
  ["a name resolving to 127.0.0.1, upper case", "http://LOCALHOST/hook"]
]

/** Public IP literals: accepted without any network call. */
const publicUrls: ReadonlyArray<string> = [
  "https://93.184.216.34/hook",
  "https://8.8.8.8:8443/webhooks?source=codex#frag",
  "https://[2606:4700:4700::1111]/hook",
  "https://[::ffff:8.8.8.8]/hook"
]

/** Not an absolute http(s) URL, or too long: refused by the contract's schema, 400 naming `payload.url`. */
const malformedUrls: ReadonlyArray<readonly [string, string]> = [
  ["ftp", "ftp://93.184.216.34/hook"],
  ["file", "file:///etc/passwd"],
  ["gopher", "gopher://127.0.0.1:6379/_FLUSHALL"],
  ["javascript", "javascript:alert(1)"],
  ["data", "data:text/plain,hello"],
  ["dict", "dict://127.0.0.1:11211/stats"],
  ["scheme-relative", "//93.184.216.34/hook"],
  ["no scheme", "93.184.216.34/hook"],
  ["empty", ""],
  ["no host", "https://"],
  ["whitespace in the host", "https://93.184.216 .34/hook"],
  ["a NUL character", "https://93.184.216.34/ho\u0000ok"],
  ["a control character", "https://93.184.216.34/\u0007"],
  ["2049 characters", `https://93.184.216.34/${"a".repeat(2049 - 22)}`],
  ["2048 characters but 3000+ UTF-8 bytes", `https://93.184.216.34/${"é".repeat(1500)}`]
]

const longestUrl = `https://93.184.216.34/${"a".repeat(2048 - 22)}`

// -------------------------------------------------------------------------------------------------------------------
// UrlPolicyLive on its own
// -------------------------------------------------------------------------------------------------------------------

const policyWith = (overrides: Partial<AppConfigShape>) =>
  Effect.gen(function* () {
    return yield* UrlPolicy
  }).pipe(Effect.provide(UrlPolicyLive.pipe(Layer.provide(appConfigTest(overrides)))))

/** The refusal reason for `url`, or undefined when it is allowed. */
const verdict = (policy: UrlPolicyShape, url: string): Effect.Effect<string | undefined> =>
  policy.check(url).pipe(
    Effect.as(undefined),
    Effect.catchTag("UrlNotAllowed", (error) => Effect.succeed(error.reason))
  )

const testConfig = (overrides: Partial<AppConfigShape>) =>
  Effect.gen(function* () {
    return yield* AppConfig
  }).pipe(Effect.provide(appConfigTest(overrides)))

describe("UrlPolicyLive", () => {
  it.live("private networks refused: every non-public address is refused, however it is written", () =>
    Effect.gen(function* () {
      const policy = yield* policyWith({ webhookAllowPrivateNetworks: false })
      for (const [what, url] of refusedUrls) {
        const reason = yield* verdict(policy, url)
        assert.isDefined(reason, `${what}: ${url} must be refused`)
        assert.match(reason ?? "", /private or reserved/, `${what}: ${url}`)
      }
    })
  )

  it.live("private networks refused: public IP literals pass, http included in development", () =>
    Effect.gen(function* () {
      const policy = yield* policyWith({ webhookAllowPrivateNetworks: false })
      for (const url of [...publicUrls, "http://93.184.216.34/hook", longestUrl]) {
        assert.isUndefined(yield* verdict(policy, url), url)
      }
    })
  )

  it.live("only http and https, and only absolute URLs", () =>
    Effect.gen(function* () {
      for (const allow of [true, false]) {
        const policy = yield* policyWith({ webhookAllowPrivateNetworks: allow })
        for (const url of ["ftp://93.184.216.34/", "file:///etc/passwd", "gopher://127.0.0.1:70/", "ws://8.8.8.8/"]) {
          assert.strictEqual(yield* verdict(policy, url), "the URL scheme must be http or https", url)
        }
        for (const url of ["", "not a url", "//93.184.216.34/", "http://[::1%25eth0]/", "https://exa mple.com/"]) {
          assert.strictEqual(yield* verdict(policy, url), "not a valid absolute URL", url)
        }
      }
    })
  )

  for (const appEnv of ["staging", "production"] as const satisfies ReadonlyArray<AppEnv>) {
    it.live(`${appEnv}: https is required, whether or not private networks are allowed`, () =>
      Effect.gen(function* () {
        for (const allow of [true, false]) {
          const policy = yield* policyWith({ appEnv, webhookAllowPrivateNetworks: allow })
          assert.strictEqual(yield* verdict(policy, "http://93.184.216.34/hook"), `https is required in ${appEnv}`)
          assert.strictEqual(yield* verdict(policy, "HTTP://93.184.216.34/hook"), `https is required in ${appEnv}`)
          assert.isUndefined(yield* verdict(policy, "https://93.184.216.34/hook"))
          // The scheme is judged before the address.
          assert.strictEqual(yield* verdict(policy, "http://127.0.0.1/hook"), `https is required in ${appEnv}`)
          assert.strictEqual(
            yield* verdict(policy, "https://127.0.0.1/hook"),
            allow ? undefined : "the address is in a private or reserved network"
          )
        }
      })
    )
  }

  it.live("private networks allowed (the development default): loopback and private addresses pass", () =>
    Effect.gen(function* () {
      const policy = yield* policyWith({})
      for (const [what, url] of refusedUrls) {
        assert.isUndefined(yield* verdict(policy, url), `${what}: ${url}`)
      }
    })
  )

  it.live("names: every answer must be public; no answer, a failed or a slow lookup all refuse", () =>
    Effect.gen(function* () {
      const answers: Record<string, ReadonlyArray<string>> = {
        "public.test": ["93.184.216.34", "2606:4700:4700::1111"],
        "mixed.test": ["93.184.216.34", "10.0.0.1"],
        "rebinding.test": ["8.8.8.8", "127.0.0.1"],
        "v6-private.test": ["2606:4700:4700::1111", "fd00::1"],
        "mapped.test": ["::ffff:169.254.169.254"],
        "empty.test": []
      }
      const asked: Array<string> = []
      const resolver: Resolver = (host) =>
        Effect.suspend(() => {
          asked.push(host)
          const found = answers[host]
          return found === undefined ? Effect.fail(new Error(`ENOTFOUND ${host}`)) : Effect.succeed(found)
        })
      const config = yield* testConfig({ webhookAllowPrivateNetworks: false })
      const policy = makeUrlPolicy(config, resolver)
      assert.isUndefined(yield* verdict(policy, "https://public.test/hook"))
      for (const host of ["mixed.test", "rebinding.test", "v6-private.test", "mapped.test", "empty.test"]) {
        assert.strictEqual(
          yield* verdict(policy, `https://${host}/hook`),
          `the host ${host} resolves to a private or reserved address`
        )
      }
      assert.strictEqual(yield* verdict(policy, "https://nxdomain.test/"), "the host nxdomain.test does not resolve")
      // IP literals are never looked up.
      const before = asked.length
      yield* verdict(policy, "https://93.184.216.34/")
      yield* verdict(policy, "https://[::1]/")
      assert.strictEqual(asked.length, before)

      // With private networks allowed nothing is looked up at all.
      const open = makeUrlPolicy(yield* testConfig({}), resolver)
      assert.isUndefined(yield* verdict(open, "https://mixed.test/"))
      assert.strictEqual(asked.length, before)
    })
  )

  it.effect("a lookup that never answers is refused after 5 seconds", () =>
    Effect.gen(function* () {
      const config = yield* testConfig({ webhookAllowPrivateNetworks: false })
      const policy = makeUrlPolicy(config, () => Effect.never)
      const fiber = yield* Effect.forkChild(verdict(policy, "https://slow.test/"))
      yield* Effect.yieldNow
      yield* TestClock.adjust("4999 millis")
      assert.isUndefined(fiber.pollUnsafe(), "still waiting just before the deadline")
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(yield* Fiber.join(fiber), "the host slow.test does not resolve")
    })
  )

  it.live("the real resolver: localhost is refused when private networks are not allowed", () =>
    Effect.gen(function* () {
      const policy = yield* policyWith({ webhookAllowPrivateNetworks: false })
      assert.strictEqual(
        yield* verdict(policy, "http://localhost:8080/hook"),
        "the host localhost resolves to a private or reserved address"
      )
    })
  )
})

// -------------------------------------------------------------------------------------------------------------------
// Through the API
// -------------------------------------------------------------------------------------------------------------------

const adminToken = "ssrf-test-admin-token"

const tenantKey = (token?: string) => Effect.map(createTenant("SSRF tenant", token), (t) => t.apiKey)

const createEndpoint = (key: string, body: Record<string, unknown>) =>
  request("/v1/endpoints", { bearer: key, json: body })

const patchEndpoint = (key: string, id: string, body: Record<string, unknown>) =>
  request(`/v1/endpoints/${id}`, { method: "PATCH", bearer: key, json: body })

const getEndpoint = (key: string, id: string) =>
  Effect.map(request(`/v1/endpoints/${id}`, { bearer: key }), (response) => {
    assert.strictEqual(response.status, 200, response.text)
    return JSON.parse(response.text) as { readonly url: string; readonly description: string }
  })

const listEndpoints = (key: string) =>
  Effect.map(request("/v1/endpoints?limit=100", { bearer: key }), (response) => {
    assert.strictEqual(response.status, 200, response.text)
    return (JSON.parse(response.text) as { readonly data: ReadonlyArray<{ readonly url: string }> }).data
  })

const expectCreated = (response: { readonly status: number; readonly text: string }) => {
  assert.strictEqual(response.status, 201, response.text)
  return JSON.parse(response.text) as { readonly id: string; readonly url: string }
}

/** A 422 problem saying the URL is not allowed, without echoing internals. */
const expectRefused = (response: WireResponse, context: string) => {
  const body = expectProblem(response, 422)
  assert.strictEqual(body.title, "Unprocessable Content", context)
  assert.match(String(body.detail), /^The endpoint URL is not allowed: /, context)
  return body
}

layer(testServer({ config: { webhookAllowPrivateNetworks: false } }), { excludeTestServices: true })(
  "endpoints with WEBHOOK_ALLOW_PRIVATE_NETWORKS=false",
  (it) => {
    it.effect("create refuses every private, loopback, link-local and unique-local target with 422", () =>
      Effect.gen(function* () {
        const key = yield* tenantKey()
        for (const [what, url] of refusedUrls) {
          const body = expectRefused(yield* createEndpoint(key, { url }), `${what}: ${url}`)
          assert.match(String(body.detail), /private or reserved/, `${what}: ${url}`)
        }
        assert.deepStrictEqual(yield* listEndpoints(key), [], "nothing was created")
      })
    )

    it.effect("update refuses them too and leaves the endpoint as it was", () =>
      Effect.gen(function* () {
        const key = yield* tenantKey()
        const created = expectCreated(
          yield* createEndpoint(key, { url: "https://93.184.216.34/hook", description: "before" })
        )
        for (const [what, url] of refusedUrls) {
          expectRefused(yield* patchEndpoint(key, created.id, { url }), `${what}: ${url}`)
          // Together with other fields: the whole update is refused.
          expectRefused(yield* patchEndpoint(key, created.id, { url, description: "after" }), `${what}: ${url}`)
        }
        const after = yield* getEndpoint(key, created.id)
        assert.strictEqual(after.url, "https://93.184.216.34/hook")
        assert.strictEqual(after.description, "before")
      })
    )

    it.effect("public IP literals are accepted on create and update", () =>
      Effect.gen(function* () {
        const key = yield* tenantKey()
        for (const url of [...publicUrls, "http://93.184.216.34/hook", longestUrl]) {
          const created = expectCreated(yield* createEndpoint(key, { url }))
          assert.strictEqual(created.url, url)
          const patched = yield* patchEndpoint(key, created.id, { url: "https://8.8.4.4/moved" })
          assert.strictEqual(patched.status, 200, patched.text)
          assert.strictEqual((yield* getEndpoint(key, created.id)).url, "https://8.8.4.4/moved")
        }
      })
    )

    it.effect("the typed client sees the refusal as the contract's UnprocessableContent", () =>
      Effect.gen(function* () {
        const key = yield* tenantKey()
        const api = yield* apiClient(key)
        const error = yield* Effect.flip(api.endpoints.create({ payload: { url: "http://169.254.169.254/" } }))
        assert.strictEqual(error._tag, "UnprocessableContent")
        const created = yield* api.endpoints.create({ payload: { url: "https://93.184.216.34/hook" } })
        const patchError = yield* Effect.flip(
          api.endpoints.update({ params: { id: created.id }, payload: { url: "http://[::1]/" } })
        )
        assert.strictEqual(patchError._tag, "UnprocessableContent")
      })
    )

    it.effect("non-http(s) schemes, malformed and over-long URLs: 400 naming payload.url", () =>
      Effect.gen(function* () {
        const key = yield* tenantKey()
        const created = expectCreated(yield* createEndpoint(key, { url: "https://93.184.216.34/hook" }))
        for (const [what, url] of malformedUrls) {
          const onCreate = expectProblem(yield* createEndpoint(key, { url }), 400)
          assert.deepStrictEqual(errorPaths(onCreate), [["payload", "url"]], what)
          const onUpdate = expectProblem(yield* patchEndpoint(key, created.id, { url }), 400)
          assert.deepStrictEqual(errorPaths(onUpdate), [["payload", "url"]], what)
        }
        assert.strictEqual((yield* getEndpoint(key, created.id)).url, "https://93.184.216.34/hook")
        assert.strictEqual((yield* listEndpoints(key)).length, 1)
      })
    )
  }
)

for (const appEnv of ["staging", "production"] as const satisfies ReadonlyArray<AppEnv>) {
  const config: Partial<AppConfigShape> = {
    appEnv,
    adminToken: Option.some(Redacted.make(adminToken)),
    // What production defaults to (appConfigTest defaults to the development setting).
    webhookAllowPrivateNetworks: false
  }
  layer(testServer({ config }), { excludeTestServices: true })(`endpoints in ${appEnv}`, (it) => {
    it.effect("http is refused with 422 on create and update; https is accepted", () =>
      Effect.gen(function* () {
        const key = yield* tenantKey(adminToken)
        for (const url of ["http://93.184.216.34/hook", "HTTP://8.8.8.8/hook"]) {
          const body = expectRefused(yield* createEndpoint(key, { url }), url)
          assert.include(String(body.detail), `https is required in ${appEnv}`)
        }
        const created = expectCreated(yield* createEndpoint(key, { url: "https://93.184.216.34/hook" }))
        const body = expectRefused(yield* patchEndpoint(key, created.id, { url: "http://93.184.216.34/hook" }), "patch")
        assert.include(String(body.detail), `https is required in ${appEnv}`)
        // https alone does not make a private address acceptable.
        expectRefused(yield* patchEndpoint(key, created.id, { url: "https://10.1.2.3/hook" }), "https private")
        expectRefused(yield* createEndpoint(key, { url: "https://[::1]/hook" }), "https loopback")
        assert.strictEqual((yield* getEndpoint(key, created.id)).url, "https://93.184.216.34/hook")
      })
    )
  })
}

layer(testServer(), { excludeTestServices: true })("endpoints with private networks allowed (development)", (it) => {
  it.effect("loopback and private targets are accepted on create and update", () =>
    Effect.gen(function* () {
      const { baseUrl } = yield* TestServer
      const key = yield* tenantKey()
      const local = `${baseUrl}/webhook-receiver`
      assert.match(local, /^http:\/\/127\.0\.0\.1:\d+\/webhook-receiver$/)
      const created = expectCreated(yield* createEndpoint(key, { url: local }))
      assert.strictEqual(created.url, local)
      for (const url of ["http://localhost:9/hook", "http://10.0.0.1/hook", "http://[::1]:9/hook", local]) {
        const patched = yield* patchEndpoint(key, created.id, { url })
        assert.strictEqual(patched.status, 200, patched.text)
        assert.strictEqual((yield* getEndpoint(key, created.id)).url, url)
      }
      // The schema rules still hold.
      expectProblem(yield* createEndpoint(key, { url: "ftp://127.0.0.1/" }), 400)
    })
  )
})
