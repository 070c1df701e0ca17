import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Fiber, Layer, Option, Redacted } from "effect"
import { TestClock } from "effect/testing"
import { makeUrlPolicy, type Resolver, UrlPolicyLive, urlPolicyWith } from "../layers/UrlPolicyLive.ts"
import { WebhookSenderLive } from "../layers/WebhookSenderLive.ts"
import type { AppConfigShape, AppEnv } from "../services/AppConfig.ts"
import { AppConfig } from "../services/AppConfig.ts"
import { UrlPolicy, type UrlPolicyShape } from "../services/UrlPolicy.ts"
import { appConfigTest } from "./support/appConfig.ts"
import { fastWorker, settled } from "./support/deliveryApi.ts"
import { apiClient, createTenant, request, type WireResponse } from "./support/http.ts"
import { outboundPost } from "./support/outbound.ts"
import { errorPaths, expectProblem } from "./support/problems.ts"
import { answer, makeReceiver } from "./support/receiver.ts"
import { TestServer, testServer } from "./support/testServer.ts"

/**
 * The SSRF guard and URL rules for webhook endpoints. Nothing here connects anywhere: IP literals are judged without
 * a network call, and the only name ever resolved is `localhost`. URLs on 127.0.0.1 that are accepted are never
 * called (there is no delivery engine in these tests).
 */

/** What a tenant is told outside development for every refused destination, whatever the reason. */
const uniformReason = "the destination is not permitted"
const uniformDetail = `The endpoint URL is not allowed: ${uniformReason}.`

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
          assert.strictEqual(yield* verdict(policy, "https://127.0.0.1/hook"), allow ? undefined : uniformReason)
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

describe("UrlPolicyLive: ports and the uniform message", () => {
  it.live("the default ports (80, 443, 1024-65535) hold in development too, private networks allowed or not", () =>
    Effect.gen(function* () {
      for (const allow of [true, false]) {
        const policy = yield* policyWith({ webhookAllowPrivateNetworks: allow })
        for (const [url, port] of [
          ["http://93.184.216.34:22/", 22],
          ["https://93.184.216.34:25/", 25],
          ["https://93.184.216.34:1023/", 1023],
          ["https://93.184.216.34:1/", 1],
          // The port is judged before the address.
          ["https://127.0.0.1:22/", 22]
        ] as const) {
          assert.strictEqual(
            yield* verdict(policy, url),
            `port ${port} is not allowed (WEBHOOK_ALLOWED_PORTS=80,443,1024-65535)`,
            `${url} (private networks allowed: ${allow})`
          )
        }
        for (const url of [
          "http://93.184.216.34/",
          "https://93.184.216.34/",
          "http://93.184.216.34:443/", // the port is what counts, not which scheme usually uses it
          "https://93.184.216.34:80/",
          "https://93.184.216.34:1024/",
          "https://93.184.216.34:65535/"
        ]) {
          assert.isUndefined(yield* verdict(policy, url), `${url} (private networks allowed: ${allow})`)
        }
      }
    })
  )

  it.live("WEBHOOK_ALLOWED_PORTS replaces the default: the scheme's default port counts as named", () =>
    Effect.gen(function* () {
      const policy = yield* policyWith({ webhookAllowedPorts: [{ from: 8443, to: 8443 }] })
      assert.isUndefined(yield* verdict(policy, "https://93.184.216.34:8443/"))
      for (const [url, port] of [
        ["https://93.184.216.34/", 443],
        ["http://93.184.216.34/", 80],
        ["https://93.184.216.34:8080/", 8080]
      ] as const) {
        assert.strictEqual(yield* verdict(policy, url), `port ${port} is not allowed (WEBHOOK_ALLOWED_PORTS=8443)`, url)
      }
    })
  )

  for (const appEnv of ["staging", "production"] as const satisfies ReadonlyArray<AppEnv>) {
    it.live(`${appEnv}: one reason for every refused destination; scheme and format errors stay specific`, () =>
      Effect.gen(function* () {
        const answers: Record<string, ReadonlyArray<string>> = {
          localhost: ["127.0.0.1"],
          "mixed.test": ["93.184.216.34", "10.0.0.1"],
          "empty.test": [],
          "public.test": ["93.184.216.34"]
        }
        const resolver: Resolver = (host) => {
          const found = answers[host]
          return found === undefined ? Effect.fail(new Error(`ENOTFOUND ${host}`)) : Effect.succeed(found)
        }
        const policy = makeUrlPolicy(yield* testConfig({ appEnv, webhookAllowPrivateNetworks: false }), resolver)
        for (const url of [
          "https://localhost/",
          "https://localhost./",
          "https://nxdomain.invalid/",
          "https://mixed.test/",
          "https://empty.test/",
          "https://10.0.0.1/",
          "https://[2002:7f00:1::]/",
          "https://[::ffff:0:a00:1]/",
          "https://1.1.1.1:22/",
          "https://public.test:25/"
        ]) {
          assert.strictEqual(yield* verdict(policy, url), uniformReason, url)
        }
        assert.isUndefined(yield* verdict(policy, "https://public.test:8443/"))
        assert.strictEqual(yield* verdict(policy, "http://public.test/"), `https is required in ${appEnv}`)
        assert.strictEqual(yield* verdict(policy, "ftp://public.test/"), "the URL scheme must be http or https")
        assert.strictEqual(yield* verdict(policy, "not a url"), "not a valid absolute URL")
      })
    )
  }

  it.effect("production: a lookup that never answers reads the same as every other refusal", () =>
    Effect.gen(function* () {
      const config = yield* testConfig({ appEnv: "production", webhookAllowPrivateNetworks: false })
      const policy = makeUrlPolicy(config, () => Effect.never)
      const fiber = yield* Effect.forkChild(verdict(policy, "https://slow.test/"))
      yield* Effect.yieldNow
      yield* TestClock.adjust("5 seconds")
      assert.strictEqual(yield* Fiber.join(fiber), uniformReason)
    })
  )
})

describe("the outbound client's connect-time port check", () => {
  const get = outboundPost

  it.live("a port outside WEBHOOK_ALLOWED_PORTS is refused before connecting, private networks allowed or not", () =>
    Effect.gen(function* () {
      const receiver = yield* makeReceiver((_, __, res) => answer(res, 204))
      const port = Number(new URL(receiver.url).port)
      for (const allow of [true, false]) {
        const config = appConfigTest({
          webhookAllowPrivateNetworks: allow,
          webhookAllowedPorts: [{ from: 443, to: 443 }]
        })
        const outcome = yield* get(`http://localhost:${port}/hook`).pipe(
          Effect.provide(WebhookSenderLive.pipe(Layer.provide(config)))
        )
        assert.strictEqual(outcome, `port ${port} is not allowed`, `private networks allowed: ${allow}`)
      }
      assert.strictEqual(receiver.requests.length, 0, "nothing reached the receiver")
      const allowed = appConfigTest({ webhookAllowedPorts: [{ from: port, to: port }] })
      const open = yield* get(`http://127.0.0.1:${port}/hook`).pipe(
        Effect.provide(WebhookSenderLive.pipe(Layer.provide(allowed)))
      )
      assert.strictEqual(open, 204)
    })
  )
})

// -------------------------------------------------------------------------------------------------------------------
// Through the API
// -------------------------------------------------------------------------------------------------------------------

const adminToken = "ssrf-test-admin-token"

const tenantKey = (token?: string) => Effect.map(createTenant("SSRF tenant", { adminToken: token }), (t) => t.apiKey)

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
      for (const url of ["http://localhost:9999/hook", "http://10.0.0.1/hook", "http://[::1]:9999/hook", local]) {
        const patched = yield* patchEndpoint(key, created.id, { url })
        assert.strictEqual(patched.status, 200, patched.text)
        assert.strictEqual((yield* getEndpoint(key, created.id)).url, url)
      }
      // The schema rules still hold.
      expectProblem(yield* createEndpoint(key, { url: "ftp://127.0.0.1/" }), 400)
    })
  )
})

// -------------------------------------------------------------------------------------------------------------------
// Production: transition addresses (issue 14 item 5), ports and one message for every refused destination (item 6)
// -------------------------------------------------------------------------------------------------------------------

/**
 * IPv6 spellings of non-public IPv4 targets (and IPv6 special-purpose ranges) that the server accepted with 201 before
 * the classifier read embedded IPv4 addresses from every transition form.
 */
const transitionAttacks: ReadonlyArray<readonly [string, string]> = [
  ["6to4 of 127.0.0.1 (the issue's URL)", "https://[2002:7f00:1::]/"],
  ["6to4 of the metadata address", "https://[2002:a9fe:a9fe::1]/hook"],
  ["6to4 of 10.0.0.1, full form", "https://[2002:0a00:0001:0000:0000:0000:0000:0001]/hook"],
  ["Teredo, server and client 127.0.0.1", "https://[2001:0:7f00:1:0:0:80ff:fffe]/hook"],
  ["Teredo, public server, client 10.0.0.1", "https://[2001:0:808:808:8000:ffff:f5ff:fffe]/hook"],
  ["SIIT IPv4-translated 127.0.0.1", "https://[::ffff:0:7f00:1]/hook"],
  ["SIIT IPv4-translated, dotted quad", "https://[::ffff:0:169.254.169.254]/hook"],
  ["IPv4-mapped, full form", "https://[0:0:0:0:0:ffff:7f00:1]/hook"],
  ["IPv4-mapped, upper case", "https://[::FFFF:A9FE:A9FE]/hook"],
  ["NAT64, full form", "https://[64:ff9b:0:0:0:0:7f00:1]/hook"],
  ["NAT64, dotted quad", "https://[64:ff9b::10.0.0.1]/hook"],
  ["benchmarking 2001:2::/48", "https://[2001:2::1]/hook"],
  ["ORCHIDv2 2001:20::/28", "https://[2001:20::1]/hook"],
  ["SRv6 SIDs 5f00::/16", "https://[5f00::1]/hook"],
  ["documentation 3fff::/20", "https://[3fff::1]/hook"]
]

/** A resolver answering from a table the test may change; unknown names do not resolve. */
const scriptedResolver =
  (answers: Map<string, ReadonlyArray<string>>): Resolver =>
  (host) =>
    Effect.suspend(() => {
      const found = answers.get(host)
      return found === undefined ? Effect.fail(new Error(`ENOTFOUND ${host}`)) : Effect.succeed(found)
    })

const productionDns = new Map<string, ReadonlyArray<string>>([
  ["localhost", ["127.0.0.1", "::1"]],
  ["public.test", ["93.184.216.34"]],
  ["rebind.test", ["93.184.216.34"]]
])

const production: Partial<AppConfigShape> = {
  appEnv: "production",
  adminToken: Option.some(Redacted.make(adminToken)),
  webhookAllowPrivateNetworks: false
}

layer(testServer({ config: production, urlPolicy: urlPolicyWith(scriptedResolver(productionDns)) }), {
  excludeTestServices: true
})("endpoints in production (private networks refused, one message)", (it) => {
  it.effect("IPv6 transition addresses of non-public IPv4 targets are refused with 422, on create and update", () =>
    Effect.gen(function* () {
      const key = yield* tenantKey(adminToken)
      // Every answer first, then one comparison: a failure lists each URL with its status and detail.
      const answers: Array<readonly [string, number, unknown]> = []
      for (const [what, url] of transitionAttacks) {
        const response = yield* createEndpoint(key, { url })
        answers.push([what, response.status, response.status === 422 ? expectRefused(response, url).detail : "-"])
      }
      assert.deepStrictEqual(
        answers,
        transitionAttacks.map(([what]) => [what, 422, uniformDetail] as const)
      )
      const created = expectCreated(yield* createEndpoint(key, { url: "https://93.184.216.34/hook" }))
      for (const [what, url] of transitionAttacks) {
        assert.strictEqual(expectRefused(yield* patchEndpoint(key, created.id, { url }), what).detail, uniformDetail)
      }
      assert.deepStrictEqual(
        (yield* listEndpoints(key)).map((endpoint) => endpoint.url),
        ["https://93.184.216.34/hook"]
      )
    })
  )

  it.effect("public addresses in transition forms are still accepted", () =>
    Effect.gen(function* () {
      const key = yield* tenantKey(adminToken)
      for (const url of [
        "https://[2002:5db8:d822::1]/hook", // 6to4 of 93.184.216.34
        "https://[64:ff9b::8.8.8.8]/hook",
        "https://[0:0:0:0:0:ffff:808:808]/hook",
        "https://[2606:4700:4700::1111]/hook"
      ]) {
        expectCreated(yield* createEndpoint(key, { url }))
      }
    })
  )

  it.effect("ports: 443, 80 (scheme rules aside) and 1024-65535 by default; https://1.1.1.1:22/ is refused", () =>
    Effect.gen(function* () {
      const key = yield* tenantKey(adminToken)
      for (const url of [
        "https://1.1.1.1/",
        "https://1.1.1.1:443/",
        "https://1.1.1.1:8443/",
        "https://1.1.1.1:65535/"
      ]) {
        expectCreated(yield* createEndpoint(key, { url }))
      }
      for (const url of ["https://1.1.1.1:22/", "https://1.1.1.1:25/", "https://1.1.1.1:1023/", "https://1.1.1.1:1/"]) {
        assert.strictEqual(expectRefused(yield* createEndpoint(key, { url }), url).detail, uniformDetail)
      }
      // A name on a refused port is refused whatever it resolves to.
      assert.strictEqual(
        expectRefused(yield* createEndpoint(key, { url: "https://public.test:25/" }), "name").detail,
        uniformDetail
      )
      expectCreated(yield* createEndpoint(key, { url: "https://public.test:8443/" }))
    })
  )

  it.effect("every refused destination reads the same: loopback name, unresolvable names, private literal, port", () =>
    Effect.gen(function* () {
      const key = yield* tenantKey(adminToken)
      const details: Array<readonly [string, unknown]> = []
      for (const url of [
        "https://localhost/hook",
        "https://localhost./hook",
        "https://nxdomain.invalid/hook",
        "https://10.0.0.1/hook",
        "https://[2002:7f00:1::]/hook",
        "https://1.1.1.1:22/hook"
      ]) {
        details.push([url, expectRefused(yield* createEndpoint(key, { url }), url).detail])
      }
      assert.deepStrictEqual(
        details,
        details.map(([url]) => [url, uniformDetail] as const)
      )
      // Scheme and format errors name the problem: they reveal nothing about the network.
      const http = expectRefused(yield* createEndpoint(key, { url: "http://93.184.216.34/hook" }), "http")
      assert.strictEqual(http.detail, "The endpoint URL is not allowed: https is required in production.")
    })
  )
})

const sendTimeDelivery = fastWorker({ maxAttempts: 1 })

const sendTimeDns = new Map<string, ReadonlyArray<string>>()

layer(
  testServer({
    config: { ...production, delivery: sendTimeDelivery },
    urlPolicy: urlPolicyWith(scriptedResolver(sendTimeDns))
  }),
  { excludeTestServices: true }
)("deliveries in production: a destination refused at send time", (it) => {
  /** The one attempt of the delivery of `eventId`, once there is one. */
  const onlyAttempt = (api: Effect.Success<ReturnType<typeof apiClient>>, eventId: string) =>
    Effect.gen(function* () {
      const delivery = yield* settled(api, eventId)
      const { attempts } = yield* api.deliveries.get({ params: { id: delivery.id } })
      return { delivery, attempts }
    }).pipe(Effect.orDie)

  it.effect("a name that resolves to a private address after it was saved: blocked, with the uniform error", () =>
    Effect.gen(function* () {
      sendTimeDns.set("rebind.test", ["93.184.216.34"])
      const api = yield* apiClient(yield* tenantKey(adminToken))
      yield* api.endpoints.create({ payload: { url: "https://rebind.test/hook" } })
      // The attacker's DNS now answers with an internal address.
      sendTimeDns.set("rebind.test", ["10.0.0.7"])
      const published = yield* api.events.publish({ payload: { type: "order.created", data: { n: 1 } } })
      const { delivery, attempts } = yield* onlyAttempt(api, published.event.id)
      assert.strictEqual(delivery.status, "failed")
      assert.deepStrictEqual(
        attempts.map((a) => [a.outcome, a.statusCode, a.error]),
        [["blocked", null, `URL not allowed: ${uniformReason}`]]
      )
    })
  )

  it.effect("a name refused only when connecting (the system resolver says loopback): the same uniform error", () =>
    Effect.gen(function* () {
      // The URL policy is told `localhost` is public; the connect-time guard asks the system, which says loopback.
      sendTimeDns.set("localhost", ["93.184.216.34"])
      const api = yield* apiClient(yield* tenantKey(adminToken))
      yield* api.endpoints.create({ payload: { url: "https://localhost:8443/hook" } })
      const published = yield* api.events.publish({ payload: { type: "order.created", data: { n: 2 } } })
      const { delivery, attempts } = yield* onlyAttempt(api, published.event.id)
      assert.strictEqual(delivery.status, "failed")
      assert.deepStrictEqual(
        attempts.map((a) => [a.outcome, a.statusCode, a.error]),
        [["blocked", null, `URL not allowed: ${uniformReason}`]]
      )
    })
  )
})
