import { createHash } from "node:crypto"
import { assert, layer } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { request } from "./support/http.ts"
import { expectProblem } from "./support/problems.ts"
import { testServer } from "./support/testServer.ts"

/**
 * `/portal` on the wire (the browser's view is test/portal-browser.test.ts): the page under its own strict CSP, never
 * cached, framed only as PORTAL_FRAME_ANCESTORS says; its files versioned, cacheable for a year, from this origin,
 * without a rate limit; anything else under it a 404 problem.
 */

/** The directives of a Content-Security-Policy header, by name. */
const directives = (policy: string | null): ReadonlyMap<string, ReadonlyArray<string>> =>
  new Map(
    (policy ?? "")
      .split(";")
      .map((part) => part.trim().split(/\s+/))
      .filter((words) => words[0] !== undefined && words[0] !== "")
      .map(([name = "", ...values]) => [name, values])
  )

const sha256 = (text: string) => `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`

layer(testServer({ config: { appEnv: "production" } }))("the portal page", (it) => {
  it.effect("GET /portal: HTML under a strict CSP (the import map by hash, nothing else inline), never cached", () =>
    Effect.gen(function* () {
      const page = yield* request("/portal")
      assert.strictEqual(page.status, 200)
      assert.strictEqual(page.headers.get("content-type"), "text/html; charset=utf-8")
      assert.strictEqual(page.headers.get("cache-control"), "no-store")
      assert.isNull(page.headers.get("x-frame-options"), "frame-ancestors decides, alone")
      assert.strictEqual(page.headers.get("referrer-policy"), "no-referrer")
      const inline = Array.from(page.text.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g), (m) => ({
        attributes: m[1] ?? "",
        body: m[2] ?? ""
      })).filter((script) => script.body !== "")
      assert.deepStrictEqual(
        inline.map((script) => script.attributes),
        [' type="importmap"'],
        "one inline script: the import map"
      )
      const policy = directives(page.headers.get("content-security-policy"))
      assert.deepStrictEqual(Object.fromEntries(policy), {
        "default-src": ["'none'"],
        "script-src": ["'self'", sha256(inline[0]?.body ?? "")],
        "style-src": ["'self'"],
        "connect-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "base-uri": ["'none'"],
        "form-action": ["'none'"],
        "frame-ancestors": ["'none'"]
      })
      // Nothing from elsewhere: every URL the page names is this origin's.
      const urls = Array.from(page.text.matchAll(/(?:src|href)="([^"]+)"/g), (m) => m[1] ?? "")
      assert.isNotEmpty(urls)
      for (const url of urls) assert.match(url, /^(\/portal\/assets\/[0-9a-f]{16}\/[a-z.-]+\.(js|css)|data:,)$/, url)
    })
  )

  it.effect("its files: versioned, cacheable for a year, the right types, no source maps, no rate limit", () =>
    Effect.gen(function* () {
      const page = yield* request("/portal")
      const importMap = JSON.parse(/<script type="importmap">([\s\S]*?)<\/script>/.exec(page.text)?.[1] ?? "{}") as {
        readonly imports: Readonly<Record<string, string>>
      }
      assert.deepStrictEqual(Object.keys(importMap.imports).sort(), ["htm", "preact", "preact/hooks"])
      const named = Array.from(page.text.matchAll(/(?:src|href)="(\/portal\/assets\/[^"]+)"/g), (m) => m[1] ?? "")
      const own = ["session.js", "api.js", "ui.js", "endpoints.js", "deliveries.js", "events.js", "event-types.js"]
      const version = /\/portal\/assets\/([0-9a-f]{16})\//.exec(named[0] ?? "")?.[1] ?? ""
      const files = [
        ...new Set([...named, ...Object.values(importMap.imports), ...own.map((f) => `/portal/assets/${version}/${f}`)])
      ]
      for (const path of files) {
        const file = yield* request(path)
        assert.strictEqual(file.status, 200, path)
        assert.strictEqual(file.headers.get("cache-control"), "public, max-age=31536000, immutable", path)
        assert.strictEqual(
          file.headers.get("content-type"),
          path.endsWith(".css") ? "text/css; charset=utf-8" : "text/javascript; charset=utf-8",
          path
        )
        assert.notInclude(file.text, "sourceMappingURL", path)
        assert.isNull(file.headers.get("ratelimit-policy"), path)
        assert.strictEqual(file.headers.get("x-content-type-options"), "nosniff", path)
      }
      // The page itself counts against the client's address, as every request outside /v1 does.
      assert.match(page.headers.get("ratelimit-policy") ?? "", /^"ip";/)
    })
  )

  it.effect("another version's file, an unknown file, another method: problems", () =>
    Effect.gen(function* () {
      const page = yield* request("/portal")
      const main = /src="(\/portal\/assets\/[0-9a-f]{16}\/main\.js)"/.exec(page.text)?.[1] ?? ""
      expectProblem(yield* request(main.replace(/[0-9a-f]{16}/, "0000000000000000")), 404)
      expectProblem(yield* request(main.replace("main.js", "secrets.env")), 404)
      expectProblem(yield* request(main.replace("main.js", "..%2F..%2Fpackage.json")), 404)
      expectProblem(yield* request("/portal/assets/x"), 404)
      const post = expectProblem(yield* request("/portal", { method: "POST", json: {} }), 405)
      assert.include(String(post.detail), "allowed: GET, HEAD")
    })
  )
})

layer(
  testServer({
    config: { portal: { sessionTtl: Duration.hours(1), frameAncestors: ["'self'", "https://app.example.com"] } }
  })
)("the portal page with PORTAL_FRAME_ANCESTORS", (it) => {
  it.effect("may be framed by exactly the sites named", () =>
    Effect.gen(function* () {
      const page = yield* request("/portal")
      const policy = directives(page.headers.get("content-security-policy"))
      assert.deepStrictEqual(policy.get("frame-ancestors"), ["'self'", "https://app.example.com"])
      assert.isNull(page.headers.get("x-frame-options"))
    })
  )
})
