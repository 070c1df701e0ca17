import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { assert, layer } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware } from "effect/http-api"
import { SqlError } from "effect/sql"
import { request } from "./support/http.ts"
import { logMark, logsSince } from "./support/observedServer.ts"
import { expectProblem } from "./support/problems.ts"
import { testServer } from "./support/testServer.ts"

/**
 * The real server with a test-only API mounted beside the main one: the main API has no JSON-body endpoint yet, and
 * no handler that dies. It opts in to problem details exactly like the main API does.
 */
const EchoPayload = Schema.Struct({ name: Schema.NonEmptyString, count: Schema.Int })

class TestGroup extends HttpApiGroup.make("errorsTest").add(
  HttpApiEndpoint.post("echo", "/test/echo", { payload: EchoPayload, success: EchoPayload }),
  HttpApiEndpoint.get("defect", "/test/defect", { success: Schema.Struct({ ok: Schema.Boolean }) }),
  HttpApiEndpoint.get("sqlState", "/test/sql-state/:code", {
    params: { code: Schema.String },
    success: Schema.Struct({ ok: Schema.Boolean })
  })
) {}

class TestApi extends HttpApi.make("errors-test").add(TestGroup).middleware(HttpApiMiddleware.ProblemDetails) {}

/** What the dying handler throws: its message and stack must reach the log and never the client. */
const defectMessage = "kaboom: secret internal state"

const TestHandlers = HttpApiBuilder.group(TestApi, "errorsTest", (handlers) =>
  handlers
    .handle("echo", ({ payload }) => Effect.succeed(payload))
    .handle("defect", () => Effect.die(new Error(defectMessage)))
    // What @effect/sql-pg reports for an error response it does not classify: the SQLSTATE on the cause.
    .handle("sqlState", ({ params }) =>
      Effect.die(
        new SqlError.SqlError({
          reason: new SqlError.UnknownError({
            cause: Object.assign(new Error("the database system is shutting down"), { code: params.code }),
            message: "PgConnection: Failed to connect"
          })
        })
      )
    )
)

const TestRoutes = HttpApiBuilder.layer(TestApi).pipe(
  Layer.provide(TestHandlers),
  Layer.provide(HttpApiMiddleware.layerProblemDetails({ includeDetails: true })),
  // The server provides these to its own routes; `extraRoutes` may only require the router.
  Layer.provide(NodeHttpServer.layerHttpServices)
)

const bodyLimitBytes = 256

const postJson = (path: string, body: string, contentType = "application/json") =>
  request(path, { method: "POST", contentType, raw: body })

interface ProblemIssue {
  readonly path: ReadonlyArray<string | number>
  readonly message: string
}

/** The dying handler's message reaches no problem. */
const withheld = { withholds: ["kaboom"] }

const issuesOf = (body: Record<string, unknown>): ReadonlyArray<ProblemIssue> => {
  assert.isArray(body.errors)
  return body.errors as ReadonlyArray<ProblemIssue>
}

const errorLogsSince = (from: number) =>
  Effect.map(logsSince(from), (entries) =>
    // The access line of a 5xx response is at error too; these tests are about the defect's own log entry.
    entries.filter((entry) => entry.level === "error" && entry.message !== "request")
  )

layer(testServer({ config: { bodyLimitBytes }, extraRoutes: TestRoutes }), { excludeTestServices: true })(
  "errors are application/problem+json",
  (it) => {
    it.effect("the test API mounts beside the main API and answers a valid request", () =>
      Effect.gen(function* () {
        const echo = yield* postJson("/test/echo", JSON.stringify({ name: "a", count: 2 }))
        assert.strictEqual(echo.status, 200)
        assert.deepStrictEqual(JSON.parse(echo.text), { name: "a", count: 2 })
        assert.strictEqual((yield* request("/livez")).status, 200)
      })
    )

    it.effect("unknown path: 404 naming the method and path, without the query string", () =>
      Effect.gen(function* () {
        const body = expectProblem(yield* request("/no/such/route?token=secret"), 404, withheld)
        assert.strictEqual(body.title, "Not Found")
        assert.strictEqual(body.detail, "No route matches GET /no/such/route.")
      })
    )

    it.effect("wrong method on a known path: 405 with Allow (RFC 9110), whatever the spelling; unknown paths 404", () =>
      Effect.gen(function* () {
        const cases: ReadonlyArray<readonly [method: string, path: string, allow: string]> = [
          ["DELETE", "/livez", "GET, HEAD"],
          ["POST", "/openapi.json", "GET, HEAD"],
          ["PUT", "/v1/endpoints/ep_whatever", "GET, HEAD, PATCH, DELETE"],
          ["DELETE", "/v1/endpoints", "GET, HEAD, POST"],
          ["PATCH", "/v1/events/evt_x?limit=3", "GET, HEAD"],
          ["GET", "/v1/deliveries/dlv_x/retry", "POST"],
          ["PUT", "//V1/%65vents/", "GET, HEAD, POST"],
          ["OPTIONS", "/admin/tenants", "GET, HEAD, POST"]
        ]
        for (const [method, path, allow] of cases) {
          const response = yield* request(path, { method })
          const problem = expectProblem(response, 405, withheld)
          assert.strictEqual(problem.title, "Method Not Allowed", path)
          assert.strictEqual(response.headers.get("allow"), allow, `${method} ${path}`)
          assert.include(String(problem.detail), `${method} is not allowed on`)
        }
        // A path nobody serves is still a 404, for any method.
        const get = expectProblem(yield* request("/test/nope"), 404, withheld)
        assert.strictEqual(get.detail, "No route matches GET /test/nope.")
        const del = expectProblem(yield* request("/v1/nothing-here", { method: "DELETE" }), 404, withheld)
        assert.strictEqual(del.detail, "No route matches DELETE /v1/nothing-here.")
        assert.isNull((yield* request("/v1/nothing-here", { method: "DELETE" })).headers.get("allow"))
      })
    )

    it.effect("malformed JSON: 400", () =>
      Effect.gen(function* () {
        const body = expectProblem(yield* postJson("/test/echo", '{"name": "a", "count": '), 400, withheld)
        assert.strictEqual(body.title, "Bad Request")
      })
    )

    it.effect("schema failures: 400 with an `errors` entry per failing path", () =>
      Effect.gen(function* () {
        const empty = expectProblem(
          yield* postJson("/test/echo", JSON.stringify({ name: "", count: 1 })),
          400,
          withheld
        )
        assert.strictEqual(empty.title, "Bad Request")
        const emptyIssues = issuesOf(empty)
        assert.deepStrictEqual(
          emptyIssues.map((issue) => issue.path),
          [["payload", "name"]]
        )
        assert.isNotEmpty(emptyIssues[0]?.message)

        const fraction = expectProblem(
          yield* postJson("/test/echo", JSON.stringify({ name: "a", count: 1.5 })),
          400,
          withheld
        )
        assert.deepStrictEqual(
          issuesOf(fraction).map((issue) => issue.path),
          [["payload", "count"]]
        )

        const missing = expectProblem(yield* postJson("/test/echo", JSON.stringify({ name: "a" })), 400, withheld)
        assert.deepStrictEqual(
          issuesOf(missing).map((issue) => issue.path),
          [["payload", "count"]]
        )

        const notAnObject = expectProblem(yield* postJson("/test/echo", "[1, 2]"), 400, withheld)
        assert.deepStrictEqual(
          issuesOf(notAnObject).map((issue) => issue.path),
          [["payload"]]
        )
      })
    )

    it.effect("oversized body: 413 naming the limit, not logged as an error", () =>
      Effect.gen(function* () {
        const mark = yield* logMark
        const big = JSON.stringify({ name: "x".repeat(bodyLimitBytes * 4), count: 1 })
        const body = expectProblem(yield* postJson("/test/echo", big), 413, withheld)
        assert.strictEqual(body.title, "Payload Too Large")
        assert.strictEqual(body.detail, `The request body exceeds the limit of ${bodyLimitBytes} bytes.`)
        // Without a Content-Length (chunked), the limit is enforced while reading.
        const chunked = yield* request("/test/echo", { method: "POST", raw: new Blob([big]).stream() })
        expectProblem(chunked, 413, withheld)
        // Just under the limit still goes through.
        const fits = JSON.stringify({ name: "x".repeat(bodyLimitBytes - 40), count: 1 })
        assert.isAtMost(Buffer.byteLength(fits), bodyLimitBytes)
        assert.strictEqual((yield* postJson("/test/echo", fits)).status, 200)
        assert.deepStrictEqual(yield* errorLogsSince(mark), [])
      })
    )

    it.effect("unsupported media type: 415", () =>
      Effect.gen(function* () {
        const body = expectProblem(yield* postJson("/test/echo", "name=a&count=1", "text/plain"), 415, withheld)
        assert.strictEqual(body.title, "Unsupported Media Type")
        assert.strictEqual(body.detail, "The request body must be JSON (Content-Type: application/json).")
      })
    )

    it.effect("client errors are not logged as errors", () =>
      Effect.gen(function* () {
        const mark = yield* logMark
        yield* request("/nope")
        yield* postJson("/test/echo", "{")
        yield* postJson("/test/echo", JSON.stringify({ name: "", count: 1 }))
        yield* postJson("/test/echo", "x", "text/plain")
        assert.deepStrictEqual(yield* errorLogsSince(mark), [])
      })
    )

    it.effect("a defect: generic 500 problem for the client, logged once with its stack", () =>
      Effect.gen(function* () {
        const mark = yield* logMark
        const response = yield* request("/test/defect")
        const body = expectProblem(response, 500, withheld)
        assert.strictEqual(body.title, "Internal Server Error")
        assert.strictEqual(body.detail, "An unexpected error occurred.")
        assert.notProperty(body, "errors")

        const errors = yield* errorLogsSince(mark)
        assert.strictEqual(errors.length, 1, JSON.stringify(errors))
        const entry = errors[0] ?? {}
        const error = String(entry.error)
        assert.include(error, defectMessage)
        assert.match(error, /\n\s+at /, "the logged error carries a stack trace")
        assert.include(error, "errors.test.ts")
      })
    )

    it.effect("a database shutting down or starting up (SQLSTATE 57P01/57P03): 503 problem, not a 500", () =>
      Effect.gen(function* () {
        for (const code of ["57P01", "57P02", "57P03"]) {
          const mark = yield* logMark
          const response = yield* request(`/test/sql-state/${code}`)
          const body = expectProblem(response, 503, withheld)
          assert.strictEqual(body.title, "Service Unavailable")
          assert.strictEqual(response.headers.get("retry-after"), "5")
          assert.deepStrictEqual(yield* errorLogsSince(mark), [], "an outage is a warning, not a logged defect")
        }
        // Any other unclassified database error is still a bug: 500.
        expectProblem(yield* request("/test/sql-state/XX000"), 500, withheld)
      })
    )

    it.effect("the server still answers normally after all of the above", () =>
      Effect.gen(function* () {
        yield* request("/test/defect")
        yield* postJson("/test/echo", "x".repeat(bodyLimitBytes * 2))
        const livez = yield* request("/livez")
        assert.strictEqual(livez.status, 200)
        assert.deepStrictEqual(JSON.parse(livez.text), { status: "pass" })
        const echo = yield* postJson("/test/echo", JSON.stringify({ name: "again", count: 3 }))
        assert.strictEqual(echo.status, 200)
        assert.deepStrictEqual(JSON.parse(echo.text), { name: "again", count: 3 })
      })
    )
  }
)
