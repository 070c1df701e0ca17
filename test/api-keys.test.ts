import { assert, layer } from "@effect/vitest"
import { Effect, Option } from "effect"
import { SqlClient } from "effect/sql"
import type { ApiKeyInfo, CreatedApiKey } from "../src/domain/ApiKeyInfo.ts"
import { apiClient, createTenant, request, type WireResponse } from "./support/http.ts"
import { isDefined, poll } from "./support/poll.ts"
import { expectProblem } from "./support/problems.ts"
import { testServerWithSql } from "./support/sharedDatabase.ts"
import { slack } from "./support/timing.ts"

/**
 * Self-service API keys (issue 21) over HTTP, on the real server and database: issuing, listing and revoking keys,
 * tenant isolation, the `read` scope, expiry, the last full key, `lastUsedAt`, and the admin's listing.
 */

const unknownKeyId = "key_0000000000000000000000000Z"

const json = (response: WireResponse, status: number): unknown => {
  assert.strictEqual(response.status, status, response.text)
  return JSON.parse(response.text)
}

/** `POST /v1/api-keys` as `bearer`; the issued key. */
const issue = (bearer: string, body: Record<string, unknown>) =>
  Effect.map(request("/v1/api-keys", { bearer, json: body }), (response) => {
    const issued = json(response, 201) as CreatedApiKey
    assert.match(issued.key, /^ck_[A-Za-z0-9_-]{43}$/)
    return issued
  })

const listKeys = (bearer: string, query = "") =>
  Effect.map(
    request(`/v1/api-keys${query}`, { bearer }),
    (response) =>
      json(response, 200) as { readonly data: ReadonlyArray<ApiKeyInfo>; readonly nextCursor: string | null }
  )

const revoke = (bearer: string, id: string, query = "") =>
  request(`/v1/api-keys/${id}${query}`, { method: "DELETE", bearer })

const statusWith = (bearer: string, path = "/v1/endpoints") => Effect.map(request(path, { bearer }), (r) => r.status)

/** The 401 of a key that does not work: the same for unknown, revoked and expired keys. */
const expectUnauthorized = (response: WireResponse) => {
  const problem = expectProblem(response, 401)
  assert.strictEqual(response.headers.get("www-authenticate"), "Bearer")
  assert.strictEqual(problem.detail, "A valid API key is required: Authorization: Bearer ck_...")
}

const keyRow = (id: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ readonly last_used_at: Date | null }>`SELECT last_used_at FROM api_keys WHERE id = ${id}`
    return row
  })

layer(testServerWithSql(), { excludeTestServices: true })("self-service API keys", (it) => {
  it.effect("POST issues a key shown once; GET lists every key newest first, never the key; DELETE revokes", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Keys owner")
      const expiresAt = new Date(Date.now() + 86_400_000).toISOString()
      const issued = yield* issue(tenant.apiKey, { name: "CI deploys", scope: "read", expiresAt })
      assert.deepInclude(issued, { name: "CI deploys", scope: "read", expiresAt, prefix: issued.key.slice(0, 11) })
      const full = yield* issue(tenant.apiKey, { name: "padded" })
      assert.strictEqual(full.scope, "full", "scope defaults to full")
      assert.isNull(full.expiresAt)
      // The new key works.
      assert.strictEqual(yield* statusWith(full.key), 200)

      const listed = yield* request("/v1/api-keys", { bearer: tenant.apiKey })
      for (const secret of [tenant.apiKey, issued.key, full.key]) assert.notInclude(listed.text, secret.slice(11))
      const page = json(listed, 200) as { readonly data: ReadonlyArray<ApiKeyInfo> }
      assert.deepStrictEqual(
        page.data.map((key) => key.id),
        [full.id, issued.id, tenant.created.apiKey.id]
      )
      const [first, second, original] = page.data
      assert.deepStrictEqual(first, {
        id: full.id,
        name: "padded",
        prefix: full.prefix,
        scope: "full",
        createdAt: full.createdAt,
        lastUsedAt: first?.lastUsedAt ?? null,
        expiresAt: null,
        revokedAt: null
      })
      assert.strictEqual(second?.expiresAt, expiresAt)
      // The admin-issued first key: no name, full scope.
      assert.deepInclude(original, { name: "", scope: "full", revokedAt: null })

      // Pagination: one at a time, the cursor of this list only.
      const one = yield* listKeys(tenant.apiKey, "?limit=1")
      assert.strictEqual(one.data[0]?.id, full.id)
      assert.isString(one.nextCursor)
      const next = yield* listKeys(tenant.apiKey, `?limit=1&cursor=${one.nextCursor}`)
      assert.strictEqual(next.data[0]?.id, issued.id)

      assert.strictEqual((yield* revoke(tenant.apiKey, issued.id)).status, 204)
      const revoked = (yield* listKeys(tenant.apiKey)).data.find((key) => key.id === issued.id)
      assert.isString(revoked?.revokedAt)
      // Again: 204, the first revocation time kept.
      assert.strictEqual((yield* revoke(tenant.apiKey, issued.id)).status, 204)
      assert.strictEqual(
        (yield* listKeys(tenant.apiKey)).data.find((key) => key.id === issued.id)?.revokedAt,
        revoked?.revokedAt
      )
    })
  )

  it.effect("bad bodies: 400 for what the schema refuses, 422 for an expiry that is not in the future", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Keys validation")
      const post = (body: unknown) => request("/v1/api-keys", { bearer: tenant.apiKey, json: body })
      for (const body of [
        {},
        { name: "" },
        { name: " x" },
        { name: "x".repeat(201) },
        { name: "a\u0000b" },
        { name: "ok", scope: "admin" },
        { name: "ok", expiresAt: "tomorrow" },
        { name: "ok", extra: 1 }
      ]) {
        expectProblem(yield* post(body), 400)
      }
      for (const expiresAt of [new Date(Date.now() - 1000).toISOString(), "2001-01-01T00:00:00Z"]) {
        const problem = expectProblem(yield* post({ name: "late", expiresAt }), 422)
        assert.strictEqual(problem.detail, "`expiresAt` must be in the future.")
      }
      assert.lengthOf((yield* listKeys(tenant.apiKey)).data, 1, "nothing was issued")
    })
  )

  it.effect("tenants are isolated: another tenant's key is 404 to DELETE and absent from the list", () =>
    Effect.gen(function* () {
      const owner = yield* createTenant("Keys A")
      const other = yield* createTenant("Keys B")
      const issued = yield* issue(owner.apiKey, { name: "A's" })
      for (const id of [issued.id, owner.created.apiKey.id, unknownKeyId, "nope", "key_0' OR '1'='1"]) {
        const problem = expectProblem(yield* revoke(other.apiKey, encodeURIComponent(id)), 404)
        assert.strictEqual(problem.detail, "No API key with this id.")
      }
      assert.strictEqual(yield* statusWith(issued.key), 200, "still works")
      assert.deepStrictEqual(
        (yield* listKeys(other.apiKey)).data.map((key) => key.id),
        [other.created.apiKey.id]
      )
      // A cursor of A's list is refused on B's.
      const aPage = yield* listKeys(owner.apiKey, "?limit=1")
      expectProblem(yield* request(`/v1/api-keys?cursor=${aPage.nextCursor}`, { bearer: other.apiKey }), 400)
    })
  )

  it.effect("a read key: 200 on GET and HEAD, 403 problem naming the scope on every write", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Keys read scope")
      const reader = yield* issue(tenant.apiKey, { name: "dashboard", scope: "read" })
      const endpoint = json(
        yield* request("/v1/endpoints", { bearer: tenant.apiKey, json: { url: "http://127.0.0.1:9999/hook" } }),
        201
      ) as { readonly id: string }
      assert.strictEqual(yield* statusWith(reader.key), 200)
      assert.strictEqual(yield* statusWith(reader.key, "/v1/api-keys"), 200)
      assert.strictEqual(yield* statusWith(reader.key, `/v1/endpoints/${endpoint.id}`), 200)
      assert.strictEqual((yield* request("/v1/endpoints", { method: "HEAD", bearer: reader.key })).status, 200)
      const writes: ReadonlyArray<readonly [string, string, unknown]> = [
        ["POST", "/v1/endpoints", { url: "http://127.0.0.1:9999/other" }],
        ["PATCH", `/v1/endpoints/${endpoint.id}`, { description: "changed" }],
        ["DELETE", `/v1/endpoints/${endpoint.id}`, undefined],
        ["POST", "/v1/events", { type: "order.created", data: {} }],
        ["POST", "/v1/api-keys", { name: "escalate", scope: "full" }],
        ["DELETE", `/v1/api-keys/${reader.id}`, undefined],
        ["DELETE", `/v1/api-keys/${tenant.created.apiKey.id}`, undefined]
      ]
      for (const [method, path, body] of writes) {
        const problem = expectProblem(yield* request(path, { method, bearer: reader.key, json: body }), 403)
        assert.strictEqual(problem.title, "Forbidden")
        assert.include(String(problem.detail), "`read` scope", `${method} ${path}`)
      }
      // Nothing was written.
      assert.strictEqual(yield* statusWith(tenant.apiKey, `/v1/endpoints/${endpoint.id}`), 200)
      assert.lengthOf((yield* listKeys(tenant.apiKey)).data, 2)
      // The typed client decodes the contract's 403.
      const client = yield* apiClient(reader.key)
      const refused = yield* Effect.flip(client.apiKeys.create({ payload: { name: "again" } }))
      assert.strictEqual(refused._tag, "Forbidden")
    })
  )

  it.effect("an expired key gets the unknown key's 401 as soon as it expires, whatever the cache holds", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Keys expiry")
      const expiresAt = Date.now() + 1500
      const expiring = yield* issue(tenant.apiKey, { name: "soon", expiresAt: new Date(expiresAt).toISOString() })
      // Used, so its lookup is cached (for 5 s) while it still works.
      assert.strictEqual(yield* statusWith(expiring.key), 200)
      const refused = yield* poll(
        "the expired key to get 401",
        request("/v1/endpoints", { bearer: expiring.key }),
        (response) => response.status !== 200
      )
      const late = Date.now() - expiresAt
      expectUnauthorized(refused)
      // The cached lookup alone would have kept it working up to 5 s past its expiry.
      assert.isBelow(late, Math.min(4000, slack(1000)), `401 only ${late} ms after the expiry`)
      const listed = (yield* listKeys(tenant.apiKey)).data.find((key) => key.id === expiring.id)
      assert.strictEqual(listed?.expiresAt, new Date(expiresAt).toISOString(), "listed, with its expiry")
      assert.isNull(listed?.revokedAt)
    })
  )

  it.effect("the last live full key: 409 naming the confirmation, revoked with ?confirm=last-full-key", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Keys last")
      const only = tenant.created.apiKey.id
      const refused = expectProblem(yield* revoke(tenant.apiKey, only), 409)
      assert.include(String(refused.detail), "?confirm=last-full-key")
      // Neither a read key nor an expired or revoked full key counts as another full key.
      yield* issue(tenant.apiKey, { name: "reader", scope: "read" })
      const expired = yield* issue(tenant.apiKey, {
        name: "short",
        expiresAt: new Date(Date.now() + 60_000).toISOString()
      })
      const sql = yield* SqlClient.SqlClient
      yield* sql`UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = ${expired.id}`
      const revokedFull = yield* issue(tenant.apiKey, { name: "gone" })
      assert.strictEqual((yield* revoke(tenant.apiKey, revokedFull.id)).status, 204)
      expectProblem(yield* revoke(tenant.apiKey, only), 409)
      expectProblem(yield* revoke(tenant.apiKey, only, "?confirm=yes"), 400)
      assert.strictEqual(yield* statusWith(tenant.apiKey), 200, "the refused revocation changed nothing")

      // With another live full key, no confirmation is needed; the key may revoke itself.
      const spare = yield* issue(tenant.apiKey, { name: "spare" })
      assert.strictEqual((yield* revoke(tenant.apiKey, only)).status, 204)
      expectUnauthorized(yield* request("/v1/endpoints", { bearer: tenant.apiKey }))
      // Now the spare is the last one: confirmed, it goes too.
      expectProblem(yield* revoke(spare.key, spare.id), 409)
      assert.strictEqual((yield* revoke(spare.key, spare.id, "?confirm=last-full-key")).status, 204)
      expectUnauthorized(yield* request("/v1/endpoints", { bearer: spare.key }))
    })
  )

  it.effect("revocation applies at once on this server: no 5 s of the cached lookup, /v1 and admin alike", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Keys revoke")
      const first = yield* issue(tenant.apiKey, { name: "first" })
      const second = yield* issue(tenant.apiKey, { name: "second" })
      assert.strictEqual(yield* statusWith(first.key), 200)
      assert.strictEqual(yield* statusWith(second.key), 200)
      assert.strictEqual((yield* revoke(tenant.apiKey, first.id)).status, 204)
      expectUnauthorized(yield* request("/v1/endpoints", { bearer: first.key }))
      assert.strictEqual((yield* request(`/admin/api-keys/${second.id}`, { method: "DELETE" })).status, 204)
      expectUnauthorized(yield* request("/v1/endpoints", { bearer: second.key }))
      assert.strictEqual(yield* statusWith(tenant.apiKey), 200, "the tenant's other keys still work")
    })
  )

  it.effect("lastUsedAt: written off the request, then not again by this process within the minute", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Keys last used")
      const a = yield* issue(tenant.apiKey, { name: "a" })
      const b = yield* issue(tenant.apiKey, { name: "b" })
      assert.isNull((yield* keyRow(a.id))?.last_used_at)
      assert.strictEqual(yield* statusWith(a.key), 200)
      yield* poll(
        "a's last_used_at",
        Effect.map(keyRow(a.id), (row) => row?.last_used_at ?? undefined),
        isDefined
      )
      const sql = yield* SqlClient.SqlClient
      // Cleared: a second write (which the statement would now allow) would show.
      yield* sql`UPDATE api_keys SET last_used_at = NULL WHERE id = ${a.id}`
      for (let i = 0; i < 3; i++) assert.strictEqual(yield* statusWith(a.key), 200)
      // One writer, in order of use: once b's write is in, any write for a queued before it is in too.
      assert.strictEqual(yield* statusWith(b.key), 200)
      yield* poll(
        "b's last_used_at",
        Effect.map(keyRow(b.id), (row) => row?.last_used_at ?? undefined),
        isDefined
      )
      assert.isNull((yield* keyRow(a.id))?.last_used_at, "a was not written again within the minute")
      const listed = (yield* listKeys(tenant.apiKey)).data.find((key) => key.id === b.id)
      assert.isString(listed?.lastUsedAt)
    })
  )

  it.effect("admin: GET /admin/tenants/:id/api-keys lists a tenant's keys as /v1 does; 404 for no tenant", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Keys admin view")
      const issued = yield* issue(tenant.apiKey, { name: "listed", scope: "read" })
      const own = yield* listKeys(tenant.apiKey)
      const admin = yield* request(`/admin/tenants/${tenant.tenantId}/api-keys`)
      assert.deepStrictEqual(json(admin, 200), own)
      assert.notInclude(admin.text, issued.key.slice(11))
      const page = json(yield* request(`/admin/tenants/${tenant.tenantId}/api-keys?limit=1`), 200) as {
        readonly nextCursor: string
      }
      const rest = json(
        yield* request(`/admin/tenants/${tenant.tenantId}/api-keys?limit=1&cursor=${page.nextCursor}`),
        200
      ) as { readonly data: ReadonlyArray<ApiKeyInfo> }
      assert.deepStrictEqual(
        rest.data.map((key) => key.id),
        [tenant.created.apiKey.id]
      )
      for (const id of ["ten_0000000000000000000000000Z", "nope"]) {
        expectProblem(yield* request(`/admin/tenants/${id}/api-keys`), 404)
      }
      // The typed client decodes the listing.
      const typed = yield* (yield* apiClient()).admin.listApiKeys({ params: { id: tenant.tenantId }, query: {} })
      assert.strictEqual(typed.data[0]?.id, issued.id)
      assert.isTrue(Option.isNone(Option.fromNullishOr(typed.nextCursor)))
    })
  )

  it.effect("/openapi.json: 403 on every /v1 operation, the routes and the confirmation documented", () =>
    Effect.gen(function* () {
      const document = JSON.parse((yield* request("/openapi.json")).text) as {
        paths: Record<string, Record<string, { responses?: Record<string, unknown>; description?: string }>>
      }
      const v1 = Object.entries(document.paths).filter(([path]) => path.startsWith("/v1/"))
      for (const [path, operations] of v1) {
        for (const [method, operation] of Object.entries(operations)) {
          assert.property(operation.responses ?? {}, "403", `${method.toUpperCase()} ${path}`)
        }
      }
      assert.sameMembers(Object.keys(document.paths["/v1/api-keys"] ?? {}), ["get", "post"])
      assert.include(document.paths["/v1/api-keys/{id}"]?.delete?.description, "?confirm=last-full-key")
      assert.property(document.paths["/admin/tenants/{id}/api-keys"] ?? {}, "get")
      assert.notInclude(document.paths["/admin/api-keys/{id}"]?.delete?.description, "at most 5 seconds later")
    })
  )
})
