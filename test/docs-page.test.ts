import { createHash } from "node:crypto"
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { apiContentSecurityPolicy } from "../src/http/SecurityHeaders.ts"
import { request } from "./support/http.ts"
import { testServer } from "./support/testServer.ts"

/**
 * What a browser may do with what codex-api serves: the reference page (/docs) runs exactly its own inline scripts
 * and cannot be framed by another site; API responses (JSON) may do nothing at all.
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

layer(testServer({ config: { appEnv: "production" } }))("Content-Security-Policy", (it) => {
  it.effect("/docs: exactly its inline scripts may run, by hash; nothing else loads; no site may frame it", () =>
    Effect.gen(function* () {
      const page = yield* request("/docs")
      assert.strictEqual(page.status, 200)
      assert.match(page.headers.get("content-type") ?? "", /^text\/html/)
      const policy = directives(page.headers.get("content-security-policy"))
      assert.deepStrictEqual(policy.get("frame-ancestors"), ["'none'"])
      assert.deepStrictEqual(policy.get("default-src"), ["'none'"])
      assert.deepStrictEqual(policy.get("base-uri"), ["'none'"])
      assert.deepStrictEqual(policy.get("form-action"), ["'none'"])
      assert.deepStrictEqual(policy.get("connect-src"), ["'self'"])

      const scripts = Array.from(page.text.matchAll(/<script>([\s\S]*?)<\/script>/g), (m) => m[1] ?? "")
      assert.strictEqual(scripts.length, 2, "the Scalar bundle and the call that starts it")
      const hashes = scripts.map((s) => `'sha256-${createHash("sha256").update(s, "utf8").digest("base64")}'`)
      assert.deepStrictEqual(policy.get("script-src"), hashes, "each inline script by hash, and nothing else")
      // The other security headers are still there.
      assert.strictEqual(page.headers.get("x-content-type-options"), "nosniff")
      assert.isNotNull(page.headers.get("strict-transport-security"))
      // Served twice, the same policy.
      assert.strictEqual(
        (yield* request("/docs")).headers.get("content-security-policy"),
        page.headers.get("content-security-policy")
      )
    })
  )

  it.effect("API responses, successes and problems alike, may do nothing in a browser", () =>
    Effect.gen(function* () {
      for (const path of ["/livez", "/openapi.json", "/v1/events", "/no-such-route"]) {
        const response = yield* request(path)
        assert.strictEqual(response.headers.get("content-security-policy"), apiContentSecurityPolicy, path)
      }
      assert.deepStrictEqual(directives(apiContentSecurityPolicy).get("frame-ancestors"), ["'none'"])
      assert.deepStrictEqual(directives(apiContentSecurityPolicy).get("default-src"), ["'none'"])
    })
  )
})
