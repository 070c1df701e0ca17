import { assert, describe, it, layer } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { SqlClient } from "effect/sql"
import { basicAuthTarget, maskUrlPassword } from "../src/domain/UrlCredentials.ts"
import { createTenant, request } from "./support/http.ts"
import { answer, eventually, makeReceiver } from "./support/receiver.ts"
import { testServerWithSql } from "./support/sharedDatabase.ts"
import { TestServer } from "./support/testServer.ts"

/** An endpoint URL's password is never shown back; the stored URL keeps it, so deliveries still reach the receiver. */

describe("maskUrlPassword", () => {
  it("masks the password, keeps everything else as written", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["http://u:p@host/x", "http://u:****@host/x"],
      ["https://user:s3cr%40t@hooks.example.com:8443/in?x=1#f", "https://user:****@hooks.example.com:8443/in?x=1#f"],
      ["https://us:er:pa@ss@host/", "https://us:****@host/"],
      ["https://u:p@[::1]:9999/x", "https://u:****@[::1]:9999/x"],
      ["https://u:p@host\\x@y", "https://u:****@host\\x@y"],
      ["https://token@host/x", "https://token@host/x"],
      ["https://u:@host/x", "https://u:@host/x"],
      ["https://host:8443/x@y:z", "https://host:8443/x@y:z"],
      ["https://[::1]:80/", "https://[::1]:80/"],
      ["https://host/?a=b@c:d", "https://host/?a=b@c:d"]
    ]
    for (const [url, shown] of cases) assert.strictEqual(maskUrlPassword(url), shown, url)
  })

  it("basicAuthTarget: Basic authentication from the percent-decoded userinfo, sent to the URL without it", () => {
    assert.deepStrictEqual(basicAuthTarget("https://us%40er:p%3Ass@host:8443/x?y=1"), {
      url: "https://host:8443/x?y=1",
      authorization: `Basic ${Buffer.from("us@er:p:ss").toString("base64")}`
    })
    assert.deepStrictEqual(basicAuthTarget("https://token@host/x"), {
      url: "https://host/x",
      authorization: `Basic ${Buffer.from("token:").toString("base64")}`
    })
    assert.deepStrictEqual(basicAuthTarget("https://host/x"), { url: "https://host/x", authorization: undefined })
  })
})

const delivery = {
  worker: true,
  timeout: Duration.seconds(5),
  maxAttempts: 3,
  backoffBase: Duration.millis(20),
  backoffMax: Duration.millis(50),
  concurrency: 4,
  endpointConcurrency: 4,
  tenantConcurrency: 4,
  pollInterval: Duration.millis(50),
  leaseMargin: Duration.seconds(30)
}

layer(testServerWithSql({ config: { delivery, logLevel: "Debug" } }), { excludeTestServices: true })(
  "an endpoint URL with credentials",
  (it) => {
    it.effect("is shown masked in every response, stored whole, and delivered to", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const receiver = yield* makeReceiver((_, __, res) => answer(res, 204))
        const { apiKey } = yield* createTenant("Credentials")
        const withCredentials = receiver.url.replace("http://", "http://hook-user:s3cret-pw@")
        const created = yield* request("/v1/endpoints", { bearer: apiKey, json: { url: withCredentials } })
        assert.strictEqual(created.status, 201, created.text)
        const masked = receiver.url.replace("http://", "http://hook-user:****@")
        const id = (JSON.parse(created.text) as { readonly id: string; readonly url: string }).id
        const responses = [
          created,
          yield* request(`/v1/endpoints/${id}`, { bearer: apiKey }),
          yield* request("/v1/endpoints", { bearer: apiKey }),
          yield* request(`/v1/endpoints/${id}`, { method: "PATCH", bearer: apiKey, json: { description: "x" } })
        ]
        for (const response of responses) {
          assert.notInclude(response.text, "s3cret-pw")
          assert.include(response.text, JSON.stringify(masked).slice(1, -1))
        }
        const [row] = yield* sql<{ readonly url: string }>`SELECT url FROM endpoints WHERE id = ${id}`
        assert.strictEqual(row?.url, withCredentials)

        const published = yield* request("/v1/events", {
          bearer: apiKey,
          json: { type: "order.created", data: { n: 1 } }
        })
        assert.strictEqual(published.status, 202, published.text)
        const received = yield* eventually(
          "the webhook to arrive",
          Effect.sync(() => receiver.requests[0])
        )
        // Nor in any log line (access lines, delivery logs at debug included).
        const { logs } = yield* TestServer
        assert.isTrue(logs.length > 0)
        for (const line of logs) assert.notInclude(line, "s3cret-pw")
        // The credentials are sent as Basic authentication (an HTTP client would drop them from the URL silently).
        assert.strictEqual(
          received.headers.authorization,
          `Basic ${Buffer.from("hook-user:s3cret-pw").toString("base64")}`
        )
      })
    )
  }
)
