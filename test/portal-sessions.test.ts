import { createHash, randomBytes } from "node:crypto"
import { PgClient } from "@effect/sql-pg"
import { assert, layer } from "@effect/vitest"
import { Context, Duration, Effect, Layer, Option, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { inject } from "vitest"
import { ApiKeyAuthLive, apiKeyCacheTtl } from "../layers/ApiKeyAuthLive.ts"
import { makeRetentionPurge } from "../layers/RetentionPurgeLive.ts"
import { ApiKeyAuth } from "../services/ApiKeyAuth.ts"
import { appConfigTest } from "./support/appConfig.ts"
import { apiClient, createTenant, request, type WireResponse } from "./support/http.ts"
import { poll } from "./support/poll.ts"
import { expectProblem } from "./support/problems.ts"
import { SharedDatabase, testServerWithSql } from "./support/sharedDatabase.ts"
import { TestServer } from "./support/testServer.ts"

/**
 * Portal sessions (issue 23): the two routes that open one (the admin's, a tenant's full key), the link they answer,
 * and what its token may do on the real server: work on /v1 as its tenant until it expires or is revoked (at once,
 * on every replica), never manage credentials or call /admin, never reach another tenant, and stop with its tenant.
 */

interface OpenedSession {
  readonly id: string
  readonly url: string
  readonly expiresAt: string
  readonly readOnly: boolean
}

const opened = (response: WireResponse): OpenedSession & { readonly token: string } => {
  assert.strictEqual(response.status, 201, response.text)
  const body = JSON.parse(response.text) as OpenedSession
  assert.deepStrictEqual(Object.keys(body).sort(), ["expiresAt", "id", "readOnly", "url"])
  const token = /#token=(cps_[A-Za-z0-9_-]{43})(&readOnly=1)?$/.exec(body.url)?.[1]
  if (token === undefined) return assert.fail(`no token in ${body.url}`)
  return { ...body, token }
}

/** A session of the tenant, opened with its API key (`POST /v1/portal-sessions`). */
const openWithKey = (apiKey: string, body: Record<string, unknown> = {}) =>
  Effect.map(request("/v1/portal-sessions", { bearer: apiKey, json: body }), opened)

/** A session of any tenant, opened by the admin (`POST /admin/tenants/{id}/portal-sessions`; development: open). */
const openAsAdmin = (tenantId: string, body: Record<string, unknown> = {}) =>
  Effect.map(request(`/admin/tenants/${tenantId}/portal-sessions`, { json: body }), opened)

const status = (path: string, bearer: string, options: { method?: string; json?: unknown } = {}) =>
  Effect.map(request(path, { bearer, ...options }), (response) => response.status)

/** Another replica's credential cache on this file's database, LISTENing as a second server process would. */
const otherReplica = Effect.gen(function* () {
  const shared = yield* SharedDatabase
  const url = Redacted.make(shared.url)
  const replica = ApiKeyAuthLive.pipe(
    Layer.provide(PgClient.layer({ url, maxConnections: 4 })),
    Layer.provide(appConfigTest({ databaseUrl: Option.some(url), databasePoolMax: 4 }))
  )
  return Context.get(yield* Layer.build(replica), ApiKeyAuth)
})

layer(testServerWithSql(), { excludeTestServices: true })("portal sessions", (it) => {
  it.effect("both routes open a session: a link to /portal with the token in its fragment, an hour by default", () =>
    Effect.gen(function* () {
      const { baseUrl } = yield* TestServer
      const tenant = yield* createTenant("Portal")
      const sql = yield* SqlClient.SqlClient
      for (const session of [yield* openWithKey(tenant.apiKey), yield* openAsAdmin(tenant.tenantId)]) {
        assert.match(session.id, /^pss_[0-9A-HJKMNP-TV-Z]{26}$/)
        // Unset PUBLIC_URL: the origin the request was sent to (http in development).
        assert.strictEqual(session.url, `${baseUrl}/portal#token=${session.token}`)
        assert.isFalse(session.readOnly)
        const lifetime = new Date(session.expiresAt).getTime() - Date.now()
        assert.isAbove(lifetime, Duration.toMillis(Duration.minutes(59)))
        assert.isAtMost(lifetime, Duration.toMillis(Duration.hours(1)))
        // The token works on /v1 as the tenant, reads and writes.
        assert.strictEqual(yield* status("/v1/endpoints", session.token), 200)
        const created = yield* request("/v1/endpoints", {
          bearer: session.token,
          json: { url: "http://127.0.0.1:1029/hook" }
        })
        assert.strictEqual(created.status, 201, created.text)
        // Its requests count against the tenant's quota, like its keys'.
        assert.match(created.headers.get("ratelimit-policy") ?? "", /^"tenant"/)
        // Only its SHA-256 is stored.
        const [row] = yield* sql<{ readonly token_hash: Uint8Array; readonly tenant_id: string }>`
          SELECT token_hash, tenant_id FROM portal_sessions WHERE id = ${session.id}`
        assert.strictEqual(row?.tenant_id, tenant.tenantId)
        assert.strictEqual(
          Buffer.from(row?.token_hash ?? []).toString("hex"),
          createHash("sha256").update(session.token).digest("hex")
        )
        const [stored] = yield* sql<{ readonly n: number }>`
          SELECT count(*)::int AS n FROM portal_sessions s WHERE s::text LIKE ${`%${session.token.slice(4, 20)}%`}`
        assert.strictEqual(stored?.n, 0, "the token itself is stored nowhere")
      }
    })
  )

  it.effect("expiresIn: 1..PORTAL_SESSION_TTL seconds; bad bodies 400, too long 422, unknown tenants 404", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Bounds")
      const short = yield* openWithKey(tenant.apiKey, { expiresIn: 60 })
      const lifetime = new Date(short.expiresAt).getTime() - Date.now()
      assert.isAbove(lifetime, 55_000)
      assert.isAtMost(lifetime, 60_000)
      assert.strictEqual((yield* openWithKey(tenant.apiKey, { expiresIn: 3600 })).readOnly, false)
      // No body at all is the defaults, as `{}`.
      opened(yield* request("/v1/portal-sessions", { method: "POST", bearer: tenant.apiKey }))
      opened(yield* request(`/admin/tenants/${tenant.tenantId}/portal-sessions`, { method: "POST" }))

      const tooLong = expectProblem(
        yield* request("/v1/portal-sessions", { bearer: tenant.apiKey, json: { expiresIn: 3601 } }),
        422
      )
      assert.deepStrictEqual(tooLong.errors, [{ pointer: "/expiresIn", message: "must be at most 3600" }])
      for (const body of [
        { expiresIn: 0 },
        { expiresIn: 1.5 },
        { expiresIn: "60" },
        { readOnly: "yes" },
        { scope: "read" }
      ]) {
        expectProblem(yield* request("/v1/portal-sessions", { bearer: tenant.apiKey, json: body }), 400)
        expectProblem(yield* request(`/admin/tenants/${tenant.tenantId}/portal-sessions`, { json: body }), 400)
      }
      for (const id of ["ten_01JD0000000000000000000000", "nope"]) {
        const problem = expectProblem(yield* request(`/admin/tenants/${id}/portal-sessions`, { json: {} }), 404)
        assert.strictEqual(problem.detail, "No tenant with this id.")
      }
      // A read key may not open one (a write), nor may nobody.
      const readKey = yield* request("/v1/api-keys", { bearer: tenant.apiKey, json: { name: "reader", scope: "read" } })
      const reader = (JSON.parse(readKey.text) as { readonly key: string }).key
      expectProblem(yield* request("/v1/portal-sessions", { bearer: reader, json: {} }), 403)
      expectProblem(yield* request("/v1/portal-sessions", { json: {} }), 401)
    })
  )

  it.effect("an expired session's token gets 401 from its expiresAt on", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Expiry")
      const session = yield* openAsAdmin(tenant.tenantId, { expiresIn: 1 })
      const expiresAt = new Date(session.expiresAt).getTime()
      const before = yield* request("/v1/endpoints", { bearer: session.token })
      // Read before its second ran out (the request above took less than that, unless the machine stalled).
      if (Date.now() < expiresAt) assert.strictEqual(before.status, 200)
      const after = yield* poll(
        "the session to expire",
        request("/v1/endpoints", { bearer: session.token }),
        (response) => response.status !== 200,
        { timeoutMs: 5_000 }
      )
      assert.isAtLeast(Date.now(), expiresAt)
      expectProblem(after, 401)
      assert.strictEqual(after.headers.get("www-authenticate"), "Bearer")
    })
  )

  it.effect("revoked at once by the tenant or the admin; 204 again; 404 for unknown or another tenant's", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Revoke")
      const other = yield* createTenant("Other")
      const byTenant = yield* openWithKey(tenant.apiKey)
      const byAdmin = yield* openWithKey(tenant.apiKey)
      const foreign = yield* openWithKey(other.apiKey)
      for (const session of [byTenant, byAdmin, foreign]) {
        assert.strictEqual(yield* status("/v1/endpoints", session.token), 200, "cached")
      }

      expectProblem(
        yield* request(`/v1/portal-sessions/${foreign.id}`, { method: "DELETE", bearer: tenant.apiKey }),
        404
      )
      assert.strictEqual(yield* status("/v1/endpoints", foreign.token), 200, "another tenant's session untouched")

      assert.strictEqual(yield* status(`/v1/portal-sessions/${byTenant.id}`, tenant.apiKey, { method: "DELETE" }), 204)
      expectProblem(yield* request("/v1/endpoints", { bearer: byTenant.token }), 401)
      assert.strictEqual(yield* status(`/v1/portal-sessions/${byTenant.id}`, tenant.apiKey, { method: "DELETE" }), 204)

      assert.strictEqual((yield* request(`/admin/portal-sessions/${byAdmin.id}`, { method: "DELETE" })).status, 204)
      expectProblem(yield* request("/v1/endpoints", { bearer: byAdmin.token }), 401)

      for (const id of ["pss_01JD0000000000000000000000", "key_01JD0000000000000000000000", "x"]) {
        expectProblem(yield* request(`/admin/portal-sessions/${id}`, { method: "DELETE" }), 404)
        expectProblem(yield* request(`/v1/portal-sessions/${id}`, { method: "DELETE", bearer: tenant.apiKey }), 404)
      }
    })
  )

  // Another replica needs a PostgreSQL server: the embedded database is one process's.
  it.effect.skipIf(inject("testDatabase").kind === "pglite")(
    "a revocation reaches another replica's cache at once (NOTIFY), not after 5 s",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const replica = yield* otherReplica
          const tenant = yield* createTenant("Replicas")
          const session = yield* openWithKey(tenant.apiKey)
          const owner = yield* replica.authenticate(session.token)
          assert.isTrue(Option.isSome(owner))
          if (Option.isSome(owner)) assert.strictEqual(owner.value.credential._tag, "PortalSession")
          const cachedAt = Date.now()
          assert.strictEqual(
            yield* status(`/v1/portal-sessions/${session.id}`, tenant.apiKey, { method: "DELETE" }),
            204
          )
          yield* poll(
            "the other replica to refuse the revoked session",
            replica.authenticate(session.token),
            Option.isNone,
            {
              timeoutMs: Duration.toMillis(apiKeyCacheTtl) - 500
            }
          )
          assert.isBelow(Date.now() - cachedAt, Duration.toMillis(apiKeyCacheTtl), "before the cache entry expired")
        })
      )
  )

  it.effect("read-only: GET and HEAD only, the 403 of a read key; the link says so", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Read only")
      const session = yield* openAsAdmin(tenant.tenantId, { readOnly: true })
      assert.isTrue(session.readOnly)
      assert.isTrue(session.url.endsWith("&readOnly=1"))
      assert.strictEqual(yield* status("/v1/events", session.token), 200)
      assert.strictEqual(yield* status("/v1/endpoints", session.token, { method: "HEAD" }), 200)
      const refused = expectProblem(
        yield* request("/v1/endpoints", { bearer: session.token, json: { url: "http://127.0.0.1:1029/hook" } }),
        403
      )
      assert.match(String(refused.detail), /`read` scope/)
      expectProblem(yield* request("/v1/events", { bearer: session.token, json: { type: "a.b", data: {} } }), 403)
    })
  )

  it.effect("never on /admin, /v1/api-keys or /v1/portal-sessions: 403, whatever its scope", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Closed routes")
      const { id: keyId } = tenant.created.apiKey
      for (const session of [
        yield* openWithKey(tenant.apiKey),
        yield* openAsAdmin(tenant.tenantId, { readOnly: true })
      ]) {
        for (const [method, path, json] of [
          ["GET", "/v1/api-keys", undefined],
          ["POST", "/v1/api-keys", { name: "escalate" }],
          ["DELETE", `/v1/api-keys/${keyId}`, undefined],
          ["POST", "/v1/portal-sessions", {}],
          ["DELETE", `/v1/portal-sessions/${session.id}`, undefined],
          // Development leaves the admin API open to anyone: a portal token is refused there all the same.
          ["GET", "/admin/tenants", undefined],
          ["POST", `/admin/tenants/${tenant.tenantId}/portal-sessions`, {}],
          ["DELETE", `/admin/tenants/${tenant.tenantId}`, undefined]
        ] as const) {
          expectProblem(yield* request(path, { method, bearer: session.token, json }), 403)
        }
        // Nothing happened: the key still works, the tenant is still there, the session too.
        assert.strictEqual(yield* status("/v1/endpoints", tenant.apiKey), 200)
        assert.strictEqual(yield* status("/v1/endpoints", session.token), 200)
      }
    })
  )

  it.effect("a forged or malformed token is a 401 like any unknown credential", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Forgery")
      const session = yield* openWithKey(tenant.apiKey)
      const flipped = session.token.slice(0, -1) + (session.token.endsWith("A") ? "B" : "A")
      for (const token of [
        `cps_${randomBytes(32).toString("base64url")}`,
        flipped,
        "cps_",
        "cps_short",
        `${session.token}x`
      ]) {
        const refused = expectProblem(yield* request("/v1/endpoints", { bearer: token }), 401, { withholds: [token] })
        assert.strictEqual(refused.detail, "A valid API key is required: Authorization: Bearer ck_...")
      }
    })
  )

  it.effect("another tenant's ids get 404 with a token, and its lists stay the token's tenant's own", () =>
    Effect.gen(function* () {
      const mine = yield* createTenant("Mine")
      const theirs = yield* createTenant("Theirs")
      const api = yield* apiClient(theirs.apiKey)
      const endpoint = yield* api.endpoints.create({ payload: { url: "http://127.0.0.1:1029/hook" } })
      const { event } = yield* api.events.publish({ payload: { type: "order.created", data: { n: 1 } } })
      const deliveries = yield* api.deliveries.listForEvent({ params: { id: event.id } })
      const delivery = deliveries.data[0]
      if (delivery === undefined) return assert.fail("no delivery")
      const session = yield* openWithKey(mine.apiKey)
      for (const [method, path] of [
        ["GET", `/v1/endpoints/${endpoint.id}`],
        ["GET", `/v1/endpoints/${endpoint.id}/secret`],
        ["POST", `/v1/endpoints/${endpoint.id}/secret/rotate`],
        ["POST", `/v1/endpoints/${endpoint.id}/test`],
        ["DELETE", `/v1/endpoints/${endpoint.id}`],
        ["GET", `/v1/events/${event.id}`],
        ["GET", `/v1/deliveries/${delivery.id}`],
        ["POST", `/v1/deliveries/${delivery.id}/retry`]
      ] as const) {
        expectProblem(yield* request(path, { method, bearer: session.token }), 404)
      }
      const list = yield* request("/v1/endpoints", { bearer: session.token })
      assert.deepStrictEqual((JSON.parse(list.text) as { readonly data: ReadonlyArray<unknown> }).data, [])
      // Theirs is untouched.
      assert.strictEqual((yield* api.endpoints.get({ params: { id: endpoint.id } })).id, endpoint.id)
    })
  )

  it.effect("deleting the tenant stops its sessions at once; the purge removes them; creating one is 404", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const tenant = yield* createTenant("Deleted")
      const session = yield* openWithKey(tenant.apiKey)
      const bystander = yield* createTenant("Bystander")
      const kept = yield* openWithKey(bystander.apiKey)
      assert.strictEqual(yield* status("/v1/endpoints", session.token), 200, "cached")

      assert.strictEqual((yield* request(`/admin/tenants/${tenant.tenantId}`, { method: "DELETE" })).status, 202)
      expectProblem(yield* request("/v1/endpoints", { bearer: session.token }), 401)
      expectProblem(yield* request(`/admin/tenants/${tenant.tenantId}/portal-sessions`, { json: {} }), 404)

      yield* Effect.flatMap(makeRetentionPurge(Duration.days(30), { batchSize: 100, restRatio: 0 }), (p) => p.purge)
      const [left] = yield* sql<{ readonly n: number }>`
        SELECT count(*)::int AS n FROM portal_sessions WHERE tenant_id = ${tenant.tenantId}`
      assert.strictEqual(left?.n, 0)
      assert.strictEqual(yield* status("/v1/endpoints", kept.token), 200, "another tenant's session still works")
    })
  )

  it.effect("opening a session clears the tenant's sessions expired more than a day ago, and only those", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const tenant = yield* createTenant("Cleared")
      const old = yield* openWithKey(tenant.apiKey)
      const recent = yield* openWithKey(tenant.apiKey)
      yield* sql`UPDATE portal_sessions SET expires_at = now() - interval '25 hours' WHERE id = ${old.id}`
      yield* sql`UPDATE portal_sessions SET expires_at = now() - interval '23 hours' WHERE id = ${recent.id}`
      const fresh = yield* openWithKey(tenant.apiKey)
      const rows = yield* sql<{ readonly id: string }>`
        SELECT id FROM portal_sessions WHERE tenant_id = ${tenant.tenantId} ORDER BY id`
      assert.deepStrictEqual(
        rows.map((row) => row.id),
        [recent.id, fresh.id]
      )
    })
  )

  it.effect("an Idempotency-Key replays the same link; the stored answer is sealed", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Replay")
      const send = request("/v1/portal-sessions", {
        bearer: tenant.apiKey,
        idempotencyKey: '"portal-1"',
        json: { expiresIn: 600 }
      })
      const first = opened(yield* send)
      const again = yield* send
      assert.strictEqual(again.headers.get("idempotent-replayed"), "true")
      assert.deepStrictEqual(opened(again), first)
      const sql = yield* SqlClient.SqlClient
      const [stored] = yield* sql<{ readonly n: number }>`
        SELECT count(*)::int AS n FROM idempotency_keys k WHERE k::text LIKE ${`%${first.token.slice(4, 20)}%`}`
      assert.strictEqual(stored?.n, 0)
    })
  )
})

layer(
  testServerWithSql({
    config: {
      publicUrl: Option.some("https://codex.example.com"),
      portal: { sessionTtl: Duration.minutes(5), frameAncestors: ["'none'"] }
    }
  }),
  { excludeTestServices: true }
)("portal sessions with PUBLIC_URL and PORTAL_SESSION_TTL", (it) => {
  it.effect("the link is on PUBLIC_URL; the lifetime defaults to, and stops at, the TTL", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Configured")
      const session = opened(yield* request("/v1/portal-sessions", { bearer: tenant.apiKey, json: {} }))
      assert.strictEqual(session.url, `https://codex.example.com/portal#token=${session.token}`)
      const lifetime = new Date(session.expiresAt).getTime() - Date.now()
      assert.isAbove(lifetime, 290_000)
      assert.isAtMost(lifetime, 300_000)
      expectProblem(yield* request("/v1/portal-sessions", { bearer: tenant.apiKey, json: { expiresIn: 301 } }), 422)
    })
  )
})
