import { createHash } from "node:crypto"
import { assert, layer } from "@effect/vitest"
import { Duration, Effect, Option, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import type { AppConfigShape } from "../services/AppConfig.ts"
import { apiClient, createTenant, type RequestOptions, request, type WireResponse } from "./support/http.ts"
import { poll } from "./support/poll.ts"
import { expectProblem } from "./support/problems.ts"
import { testServerWithSql } from "./support/sharedDatabase.ts"
import { TestDatabaseLive } from "./support/testDatabase.ts"
import { startTestServer, TestServer } from "./support/testServer.ts"
import { slack } from "./support/timing.ts"

// ---------------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------------

const adminToken = "test-admin-token-0123456789"

const idPattern = (prefix: string) => new RegExp(`^${prefix}_[0-9A-HJKMNP-TV-Z]{26}$`)
const apiKeyPattern = /^ck_[A-Za-z0-9_-]{43}$/
const isoPattern = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

/** Well-formed ids that name nothing. */
const unknownId = (prefix: string) => `${prefix}_0000000000000000000000000Z`

/** Ids no resource can have: wrong prefix, wrong alphabet, wrong length, injection attempts, non-ASCII. */
const malformedIds = (prefix: string): ReadonlyArray<string> => [
  "nope",
  `${prefix}_`,
  `${prefix}_0000000000000000000000000I`, // I is not in Crockford base32
  `${prefix}_0000000000000000000000000z`, // lower case
  `${prefix}_0000000000000000000000000ZZ`, // 27 characters
  `${prefix === "ten" ? "ep" : "ten"}_0000000000000000000000000Z`, // another kind's id
  `${prefix}_0' OR '1'='1`,
  `${prefix}_é`,
  `${prefix}_0000000000000000000000000\u0000`,
  "a/b",
  "x".repeat(3000)
]

const adminClient = apiClient(adminToken)

/** The `_tag` of the failure of `self` (which must fail). */
const failureTag = <A, E extends { readonly _tag: string }, R>(self: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.flip(self), (error) => error._tag)

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })

const jsonInit = (method: string, body: unknown, headers: Record<string, string>): RequestOptions => ({
  method,
  headers,
  json: body
})

const expectJson = (response: WireResponse, status: number): unknown => {
  assert.strictEqual(response.status, status, response.text)
  assert.match(response.headers.get("content-type") ?? "", /^application\/json/)
  return JSON.parse(response.text)
}

/** A fresh tenant and the typed client authenticated as it. */
const tenantWithClient = (name: string) =>
  Effect.gen(function* () {
    const { created } = yield* createTenant(name, { adminToken })
    const client = yield* apiClient(created.apiKey.key)
    return { ...created, client }
  })

const sha256Hex = (value: string) => createHash("sha256").update(value).digest("hex")

const statusOf = (path: string, init: RequestOptions) => Effect.map(request(path, init), (r) => r.status)

// ---------------------------------------------------------------------------------------------------------------
// The main server: staging, ADMIN_TOKEN set, and a SqlClient on its database
// ---------------------------------------------------------------------------------------------------------------

const mainConfig: Partial<AppConfigShape> = {
  appEnv: "staging",
  adminToken: Option.some(Redacted.make(adminToken))
}

layer(testServerWithSql({ config: mainConfig }), { excludeTestServices: true })("tenant API", (it) => {
  // -- Admin API ------------------------------------------------------------------------------------------------

  it.effect("admin: create a tenant → the tenant and its first API key, shown once", () =>
    Effect.gen(function* () {
      const admin = yield* adminClient
      const created = yield* admin.admin.createTenant({ payload: { name: "Acme Inc." } })
      assert.match(created.tenant.id, idPattern("ten"))
      assert.strictEqual(created.tenant.name, "Acme Inc.")
      assert.match(created.tenant.createdAt, isoPattern)
      assert.match(created.apiKey.id, idPattern("key"))
      assert.match(created.apiKey.key, apiKeyPattern)
      assert.strictEqual(created.apiKey.prefix, created.apiKey.key.slice(0, 11))
      assert.match(created.apiKey.createdAt, isoPattern)

      // The key works.
      const tenant = yield* apiClient(created.apiKey.key)
      assert.deepStrictEqual((yield* tenant.endpoints.list({ query: {} })).data, [])

      // It is never shown again: not by get, not by list.
      const detail = yield* admin.admin.getTenant({ params: { id: created.tenant.id } })
      assert.deepStrictEqual(detail, {
        ...created.tenant,
        apiKeys: [
          {
            id: created.apiKey.id,
            prefix: created.apiKey.prefix,
            createdAt: created.apiKey.createdAt,
            revokedAt: null
          }
        ],
        deletion: null
      })
      const wireGet = yield* request(`/admin/tenants/${created.tenant.id}`, { headers: bearer(adminToken) })
      const wireList = yield* request("/admin/tenants?limit=100", { headers: bearer(adminToken) })
      for (const response of [wireGet, wireList]) {
        assert.strictEqual(response.status, 200)
        assert.notInclude(response.text, created.apiKey.key)
        assert.notInclude(response.text, created.apiKey.key.slice(11))
        assert.notMatch(response.text, /hash/i)
        assert.notInclude(response.text, sha256Hex(created.apiKey.key))
      }
      const wireKeys = (JSON.parse(wireGet.text) as { apiKeys: ReadonlyArray<Record<string, unknown>> }).apiKeys
      assert.deepStrictEqual(
        wireKeys.map((key) => Object.keys(key).sort()),
        [["createdAt", "id", "prefix", "revokedAt"]]
      )

      // On the wire: 201 with JSON.
      const raw = yield* request("/admin/tenants", jsonInit("POST", { name: "Wire Ltd" }, bearer(adminToken)))
      const body = expectJson(raw, 201) as { tenant: { name: string }; apiKey: { key: string } }
      assert.strictEqual(body.tenant.name, "Wire Ltd")
      assert.match(body.apiKey.key, apiKeyPattern)
    })
  )

  it.effect("admin: API keys are stored as SHA-256 hash + display prefix, never the key, never logged", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const { logs } = yield* TestServer
      const { created } = yield* createTenant("Stored keys", { adminToken })
      const admin = yield* adminClient
      const second = yield* admin.admin.createApiKey({ params: { id: created.tenant.id } })

      for (const issued of [created.apiKey, second]) {
        const rows = yield* sql<{
          readonly tenant_id: string
          readonly hash_hex: string
          readonly key_prefix: string
          readonly row_json: string
        }>`
          SELECT tenant_id, encode(key_hash, 'hex') AS hash_hex, key_prefix, row_to_json(k)::text AS row_json
          FROM api_keys k WHERE id = ${issued.id}`
        assert.strictEqual(rows.length, 1)
        const row = rows[0]
        assert.isDefined(row)
        if (row === undefined) return
        assert.strictEqual(row.tenant_id, created.tenant.id)
        assert.strictEqual(row.hash_hex, sha256Hex(issued.key))
        assert.strictEqual(row.key_prefix, issued.prefix)
        assert.strictEqual(row.key_prefix, issued.key.slice(0, 11))
        // Nothing in the row holds the key or its secret part.
        assert.notInclude(row.row_json, issued.key)
        assert.notInclude(row.row_json, issued.key.slice(11))
        assert.notInclude(row.row_json, Buffer.from(issued.key).toString("hex"))
      }
      // Nor does any log line (and there are lines: the access lines of these requests).
      assert.isTrue(
        logs.some((line) => line.includes('"route":"/admin/tenants/:id/api-keys"')),
        "the access line of the key creation"
      )
      for (const line of logs) {
        assert.notInclude(line, created.apiKey.key.slice(11))
        assert.notInclude(line, second.key.slice(11))
      }
    })
  )

  it.effect("admin: list tenants pages with limit/cursor/nextCursor, newest first", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const admin = yield* adminClient
      const createdIds: Array<string> = []
      for (let i = 0; i < 5; i++) createdIds.push((yield* createTenant(`Paged ${i}`, { adminToken })).tenantId)

      const seen: Array<{ readonly id: string; readonly createdAt: string }> = []
      let cursor: string | undefined
      let pages = 0
      do {
        const page = yield* admin.admin.listTenants({
          query: cursor === undefined ? { limit: 2 } : { limit: 2, cursor }
        })
        pages++
        assert.isAtMost(page.data.length, 2)
        seen.push(...page.data)
        if (page.nextCursor !== null) {
          assert.strictEqual(page.data.length, 2)
          assert.isString(page.nextCursor, "an opaque cursor while more pages follow")
        }
        cursor = page.nextCursor ?? undefined
      } while (cursor !== undefined && pages < 100)

      const counted = yield* sql<{ readonly count: number }>`SELECT count(*)::int AS count FROM tenants`
      const count = counted[0]?.count ?? -1
      assert.strictEqual(seen.length, count, "every tenant appears exactly once across the pages")
      assert.strictEqual(pages, Math.ceil(count / 2))
      assert.strictEqual(new Set(seen.map((t) => t.id)).size, seen.length)
      const ids = seen.map((t) => t.id)
      assert.deepStrictEqual(
        ids,
        [...ids].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0)),
        "newest (largest id) first"
      )
      for (let i = 1; i < seen.length; i++) {
        assert.isTrue((seen[i - 1]?.createdAt ?? "") >= (seen[i]?.createdAt ?? ""), "createdAt never increases")
      }
      // The five just created are the five newest, newest first.
      assert.deepStrictEqual(ids.slice(0, 5), [...createdIds].reverse())

      // Default page size is 50; a cursor from the middle continues after it.
      const all = yield* admin.admin.listTenants({ query: {} })
      assert.deepStrictEqual(
        all.data.map((t) => t.id),
        ids.slice(0, 50)
      )
      const firstThree = yield* admin.admin.listTenants({ query: { limit: 3 } })
      const rest = yield* admin.admin.listTenants({ query: { cursor: firstThree.nextCursor ?? "", limit: 100 } })
      assert.deepStrictEqual(
        rest.data.map((t) => t.id),
        ids.slice(3)
      )
      assert.isNull(rest.nextCursor)

      // A cursor this list did not issue is a 400 problem: a raw id, another list's cursor, one altered by a byte.
      const otherList = Buffer.from(
        Buffer.from(firstThree.nextCursor ?? "", "base64url")
          .toString("utf8")
          .replace("|tenants|", "|events|")
      ).toString("base64url")
      const altered = `${(firstThree.nextCursor ?? "").slice(0, -2)}AA`
      for (const cursor of [createdIds[2] ?? "", otherList, altered, "djF8dGVuYW50c3xhZG1pbnw"]) {
        const response = yield* request(`/admin/tenants?cursor=${cursor}`, { headers: bearer(adminToken) })
        const problem = expectProblem(response, 400)
        assert.match(String(problem.detail), /^The cursor is not one this list returned/, cursor)
      }

      // Out-of-range limits and malformed cursors are 400 problems naming the query field.
      for (const query of [
        "limit=0",
        "limit=-1",
        "limit=101",
        "limit=abc",
        "limit=1.5",
        "limit=NaN",
        "limit=1e400",
        "cursor=",
        "cursor=not%20a%20cursor",
        `cursor=${"a".repeat(257)}`
      ]) {
        const response = yield* request(`/admin/tenants?${query}`, { headers: bearer(adminToken) })
        const problem = expectProblem(response, 400)
        const errors = problem.errors as ReadonlyArray<{ readonly path: ReadonlyArray<string> }>
        assert.strictEqual(errors[0]?.path[0], "query", response.text)
      }
    })
  )

  it.effect("admin: issue another key, revoke a key; revoking is idempotent and keeps the first revokedAt", () =>
    Effect.gen(function* () {
      const admin = yield* adminClient
      const { created } = yield* createTenant("Two keys", { adminToken })
      const second = yield* admin.admin.createApiKey({ params: { id: created.tenant.id } })
      assert.match(second.id, idPattern("key"))
      assert.match(second.key, apiKeyPattern)
      assert.notStrictEqual(second.key, created.apiKey.key)
      assert.notStrictEqual(second.id, created.apiKey.id)
      assert.strictEqual(second.prefix, second.key.slice(0, 11))

      const raw = yield* request(`/admin/tenants/${created.tenant.id}/api-keys`, {
        method: "POST",
        headers: bearer(adminToken)
      })
      const third = expectJson(raw, 201) as { id: string; key: string }
      assert.match(third.key, apiKeyPattern)

      const before = yield* admin.admin.getTenant({ params: { id: created.tenant.id } })
      assert.deepStrictEqual(
        before.apiKeys.map((k) => k.id),
        [created.apiKey.id, second.id, third.id]
      )
      assert.isTrue(before.apiKeys.every((k) => k.revokedAt === null))

      const revoke = yield* request(`/admin/api-keys/${second.id}`, { method: "DELETE", headers: bearer(adminToken) })
      assert.strictEqual(revoke.status, 204)
      assert.strictEqual(revoke.text, "")
      const after = yield* admin.admin.getTenant({ params: { id: created.tenant.id } })
      const revokedAt = after.apiKeys.find((k) => k.id === second.id)?.revokedAt ?? null
      assert.isNotNull(revokedAt)
      assert.match(revokedAt ?? "", isoPattern)
      assert.deepStrictEqual(
        after.apiKeys.filter((k) => k.revokedAt === null).map((k) => k.id),
        [created.apiKey.id, third.id]
      )

      // Again: still 204, the original revocation time stays.
      yield* admin.admin.revokeApiKey({ params: { id: second.id } })
      const again = yield* admin.admin.getTenant({ params: { id: created.tenant.id } })
      assert.strictEqual(again.apiKeys.find((k) => k.id === second.id)?.revokedAt, revokedAt)
    })
  )

  it.effect("admin: unknown and malformed ids are 404 problems, never 400 or 500", () =>
    Effect.gen(function* () {
      const admin = yield* adminClient
      const { created } = yield* createTenant("Ids", { adminToken })
      assert.strictEqual(yield* failureTag(admin.admin.getTenant({ params: { id: unknownId("ten") } })), "NotFound")
      assert.strictEqual(yield* failureTag(admin.admin.createApiKey({ params: { id: unknownId("ten") } })), "NotFound")
      assert.strictEqual(yield* failureTag(admin.admin.revokeApiKey({ params: { id: unknownId("key") } })), "NotFound")
      // A key id where a tenant id belongs, and the other way round.
      assert.strictEqual(yield* failureTag(admin.admin.getTenant({ params: { id: created.apiKey.id } })), "NotFound")
      assert.strictEqual(yield* failureTag(admin.admin.revokeApiKey({ params: { id: created.tenant.id } })), "NotFound")

      const auth = bearer(adminToken)
      for (const id of [...malformedIds("ten"), unknownId("ten")]) {
        const path = encodeURIComponent(id)
        expectProblem(yield* request(`/admin/tenants/${path}`, { headers: auth }), 404)
        expectProblem(yield* request(`/admin/tenants/${path}/api-keys`, { method: "POST", headers: auth }), 404)
      }
      for (const id of [...malformedIds("key"), unknownId("key")]) {
        expectProblem(
          yield* request(`/admin/api-keys/${encodeURIComponent(id)}`, { method: "DELETE", headers: auth }),
          404
        )
      }
      // Nothing was revoked or issued by all that.
      const detail = yield* admin.admin.getTenant({ params: { id: created.tenant.id } })
      assert.strictEqual(detail.apiKeys.length, 1)
      assert.deepStrictEqual(
        detail.apiKeys.map((k) => k.revokedAt),
        [null]
      )
    })
  )

  it.effect("admin: a missing, empty or wrong admin token is a 401 problem on every admin route", () =>
    Effect.gen(function* () {
      const { created } = yield* createTenant("Guarded", { adminToken })
      const routes: ReadonlyArray<readonly [method: string, path: string, body?: unknown]> = [
        ["POST", "/admin/tenants", { name: "Intruder" }],
        ["POST", "/admin/tenants", { name: "" }], // an invalid body is not looked at before the token
        ["GET", "/admin/tenants"],
        ["GET", "/admin/tenants?limit=0"],
        ["GET", `/admin/tenants/${created.tenant.id}`],
        ["GET", "/admin/tenants/not-an-id"],
        ["POST", `/admin/tenants/${created.tenant.id}/api-keys`],
        ["DELETE", `/admin/api-keys/${created.apiKey.id}`]
      ]
      const badHeaders: ReadonlyArray<Record<string, string>> = [
        {},
        { authorization: "" },
        { authorization: "Bearer" },
        { authorization: "Bearer " },
        bearer(`${adminToken}x`),
        bearer(adminToken.slice(0, -1)),
        bearer(adminToken.toUpperCase()),
        { authorization: `Basic ${Buffer.from(`admin:${adminToken}`).toString("base64")}` },
        { authorization: adminToken },
        // A tenant's API key is not an admin token.
        bearer(created.apiKey.key)
      ]
      const bodies = new Set<string>()
      for (const [method, path, body] of routes) {
        for (const headers of badHeaders) {
          const init: RequestOptions = body === undefined ? { method, headers } : jsonInit(method, body, headers)
          const response = yield* request(path, init)
          const problem = expectProblem(response, 401)
          assert.strictEqual(problem.title, "Unauthorized")
          assert.strictEqual(response.headers.get("www-authenticate"), "Bearer")
          bodies.add(response.text)
        }
      }
      assert.strictEqual(bodies.size, 1, [...bodies].join("\n"))

      // The typed client without a token fails with the Unauthorized problem.
      const anonymous = yield* apiClient()
      assert.strictEqual(yield* failureTag(anonymous.admin.listTenants({ query: {} })), "Unauthorized")
      const wrong = yield* apiClient("wrong")
      assert.strictEqual(
        yield* failureTag(wrong.admin.getTenant({ params: { id: created.tenant.id } })),
        "Unauthorized"
      )

      // Nothing happened: no tenant created, the key not revoked.
      const admin = yield* adminClient
      const all = yield* admin.admin.listTenants({ query: { limit: 100 } })
      assert.isFalse(all.data.some((t) => t.name === "Intruder"))
      const detail = yield* admin.admin.getTenant({ params: { id: created.tenant.id } })
      assert.deepStrictEqual(
        detail.apiKeys.map((k) => k.revokedAt),
        [null]
      )
    })
  )

  // -- API keys -------------------------------------------------------------------------------------------------

  it.effect("API keys: missing, empty, malformed, unknown and revoked keys all get the same 401 problem", () =>
    Effect.gen(function* () {
      const admin = yield* adminClient
      const { created } = yield* createTenant("Credentials", { adminToken })
      const doomed = yield* admin.admin.createApiKey({ params: { id: created.tenant.id } })
      yield* admin.admin.revokeApiKey({ params: { id: doomed.id } })
      // Wait out the key cache for the revoked key (it was never looked up, but be safe).
      yield* poll(
        "the revoked key to be refused",
        statusOf("/v1/endpoints", { headers: bearer(doomed.key) }),
        (s) => s === 401,
        { intervalMs: 100 }
      )

      const wellFormedUnknown = `ck_${"A".repeat(43)}`
      const credentials: ReadonlyArray<Record<string, string>> = [
        {},
        { authorization: "" },
        { authorization: "Bearer" },
        { authorization: "Bearer " },
        { authorization: "Bearer    " },
        bearer("not-a-key"),
        bearer("ck_"),
        bearer(created.apiKey.key.slice(0, -1)),
        bearer(`${created.apiKey.key}x`),
        bearer(created.apiKey.key.toUpperCase()),
        bearer(`ck_${"!".repeat(43)}`),
        bearer(created.apiKey.prefix),
        bearer(wellFormedUnknown),
        bearer(doomed.key),
        // (The admin token itself gets a 401 saying it needs `Codex-Tenant`: test/operator-header.test.ts. Only its
        // holder can see that, and a wrong token is an unknown key like any other.)
        bearer(`${adminToken}x`),
        { authorization: `Basic ${Buffer.from(`user:${created.apiKey.key}`).toString("base64")}` },
        { authorization: created.apiKey.key },
        { authorization: `Token ${created.apiKey.key}` }
      ]
      const routes: ReadonlyArray<readonly [method: string, path: string, body?: unknown]> = [
        ["GET", "/v1/endpoints"],
        ["POST", "/v1/endpoints", { url: "https://example.com/hook" }],
        ["POST", "/v1/endpoints", { url: 42 }], // an invalid body is not looked at before the key
        ["GET", `/v1/endpoints/${unknownId("ep")}`],
        ["GET", "/v1/endpoints/not-an-id/secret"],
        ["POST", "/v1/events", { type: "order.created", data: {} }],
        ["GET", "/v1/events?limit=1"],
        ["GET", `/v1/events/${unknownId("evt")}`]
      ]
      const bodies = new Set<string>()
      for (const [method, path, body] of routes) {
        for (const headers of credentials) {
          const init: RequestOptions = body === undefined ? { method, headers } : jsonInit(method, body, headers)
          const response = yield* request(path, init)
          const problem = expectProblem(response, 401)
          assert.strictEqual(problem.title, "Unauthorized")
          // RFC 9110 §11.6.1: a 401 carries the challenge.
          assert.strictEqual(response.headers.get("www-authenticate"), "Bearer")
          bodies.add(response.text)
        }
      }
      assert.strictEqual(bodies.size, 1, [...bodies].join("\n"))

      // The scheme is case-insensitive (RFC 9110) and may be followed by several spaces: those are valid.
      for (const authorization of [`bearer ${created.apiKey.key}`, `BEARER   ${created.apiKey.key}`]) {
        assert.strictEqual(yield* statusOf("/v1/endpoints", { headers: { authorization } }), 200, authorization)
      }

      // The same through the typed client.
      for (const key of ["", "ck_nope", wellFormedUnknown, doomed.key]) {
        const client = yield* apiClient(key)
        assert.strictEqual(yield* failureTag(client.events.list({ query: {} })), "Unauthorized")
      }
      // Nothing was written by the rejected requests.
      const tenant = yield* apiClient(created.apiKey.key)
      assert.deepStrictEqual((yield* tenant.endpoints.list({ query: {} })).data, [])
      assert.deepStrictEqual((yield* tenant.events.list({ query: {} })).data, [])
    })
  )

  it.effect("API keys: a revoked key stops working within the key cache's lifetime; another key keeps working", () =>
    Effect.gen(function* () {
      const admin = yield* adminClient
      const { created } = yield* createTenant("Revocation", { adminToken })
      const spare = yield* admin.admin.createApiKey({ params: { id: created.tenant.id } })
      const listWith = (key: string) => statusOf("/v1/endpoints", { headers: bearer(key) })
      // Both keys are in use, so their lookups are cached.
      assert.strictEqual(yield* listWith(created.apiKey.key), 200)
      assert.strictEqual(yield* listWith(spare.key), 200)

      yield* admin.admin.revokeApiKey({ params: { id: created.apiKey.id } })
      const revokedAt = Date.now()
      // Documented bound: the key cache's lifetime (5 s). Poll with a 10 s deadline.
      yield* poll("the revoked key to be refused", listWith(created.apiKey.key), (status) => status === 401, {
        intervalMs: 100
      })
      const tookMs = Date.now() - revokedAt
      // README: a revoked key stops working within the key cache's 5 s (written out, not read from the code); the
      // margin is the poll's and the machine's, not the cache's.
      assert.isAtMost(tookMs, 5_000 + slack(700), `revocation took ${tookMs} ms`)

      // It stays revoked, and the tenant's other key is unaffected.
      for (let i = 0; i < 3; i++) assert.strictEqual(yield* listWith(created.apiKey.key), 401)
      const tenant = yield* apiClient(spare.key)
      const endpoint = yield* tenant.endpoints.create({ payload: { url: "https://example.com/after-revoke" } })
      assert.strictEqual((yield* tenant.endpoints.get({ params: { id: endpoint.id } })).id, endpoint.id)
    })
  )

  it.effect("API keys: two keys of one tenant see the same data", () =>
    Effect.gen(function* () {
      const admin = yield* adminClient
      const one = yield* tenantWithClient("Shared data")
      const other = yield* admin.admin.createApiKey({ params: { id: one.tenant.id } })
      const two = yield* apiClient(other.key)
      const endpoint = yield* one.client.endpoints.create({ payload: { url: "https://example.com/shared" } })
      const published = yield* two.events.publish({ payload: { type: "shared.thing", data: { n: 1 } } })
      assert.strictEqual((yield* two.endpoints.get({ params: { id: endpoint.id } })).id, endpoint.id)
      assert.strictEqual((yield* one.client.events.get({ params: { id: published.event.id } })).id, published.event.id)
    })
  )

  // -- Tenant isolation -----------------------------------------------------------------------------------------

  it.effect("isolation: tenant B can neither read, list, update, delete nor rotate anything of tenant A's", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const a = yield* tenantWithClient("Tenant A")
      const b = yield* tenantWithClient("Tenant B")

      // B has items older and newer than A's, so cursors from A's ids fall in the middle of B's list.
      const bOld = yield* b.client.endpoints.create({ payload: { url: "https://b.example.com/old" } })
      const bOldEvent = yield* b.client.events.publish({ payload: { type: "order.created", data: { who: "b-old" } } })
      const aEndpoints = []
      const aEvents = []
      for (let i = 0; i < 3; i++) {
        aEndpoints.push(
          yield* a.client.endpoints.create({
            payload: { url: `https://a.example.com/${i}`, description: `A ${i}`, metadata: { owner: "a" } }
          })
        )
        aEvents.push(
          (yield* a.client.events.publish({ payload: { type: "order.created", data: { who: "a", i } } })).event
        )
      }
      const bNew = yield* b.client.endpoints.create({ payload: { url: "https://b.example.com/new" } })
      const bNewEvent = yield* b.client.events.publish({ payload: { type: "order.created", data: { who: "b-new" } } })
      const bEndpointIds = [bNew.id, bOld.id]
      const bEventIds = [bNewEvent.event.id, bOldEvent.event.id]
      // B's publish fanned out to B's endpoints only.
      assert.strictEqual(bNewEvent.deliveriesQueued, 2)
      const fanout = yield* sql<{ endpoint_id: string }>`
        SELECT endpoint_id FROM deliveries WHERE event_id = ${bNewEvent.event.id} ORDER BY endpoint_id DESC`
      assert.deepStrictEqual(
        fanout.map((r) => r.endpoint_id),
        bEndpointIds
      )

      const aSecrets = []
      for (const endpoint of aEndpoints)
        aSecrets.push(yield* a.client.endpoints.getSecret({ params: { id: endpoint.id } }))

      // Every operation on A's endpoints and events: 404 through the typed client...
      for (const endpoint of aEndpoints) {
        const params = { id: endpoint.id }
        assert.strictEqual(yield* failureTag(b.client.endpoints.get({ params })), "NotFound")
        assert.strictEqual(
          yield* failureTag(b.client.endpoints.update({ params, payload: { description: "pwned", enabled: false } })),
          "NotFound"
        )
        assert.strictEqual(yield* failureTag(b.client.endpoints.delete({ params })), "NotFound")
        assert.strictEqual(yield* failureTag(b.client.endpoints.getSecret({ params })), "NotFound")
        assert.strictEqual(yield* failureTag(b.client.endpoints.rotateSecret({ params })), "NotFound")
      }
      for (const event of aEvents) {
        assert.strictEqual(yield* failureTag(b.client.events.get({ params: { id: event.id } })), "NotFound")
      }

      // ...and on the wire the 404 is exactly the one for an id that does not exist at all.
      const auth = bearer(b.apiKey.key)
      const wire = (method: string, path: string, body?: unknown) =>
        request(path, body === undefined ? { method, headers: auth } : jsonInit(method, body, auth))
      const endpointCalls = (id: string) =>
        [
          wire("GET", `/v1/endpoints/${id}`),
          wire("PATCH", `/v1/endpoints/${id}`, { url: "https://evil.example.com/" }),
          wire("DELETE", `/v1/endpoints/${id}`),
          wire("GET", `/v1/endpoints/${id}/secret`),
          wire("POST", `/v1/endpoints/${id}/secret/rotate`)
        ] as const
      const unknownBodies = []
      for (const call of endpointCalls(unknownId("ep"))) unknownBodies.push(expectProblem(yield* call, 404))
      for (const endpoint of aEndpoints) {
        const calls = endpointCalls(endpoint.id)
        for (let i = 0; i < calls.length; i++) {
          const call = calls[i]
          if (call === undefined) continue
          assert.deepStrictEqual(expectProblem(yield* call, 404), unknownBodies[i])
        }
      }
      const unknownEvent = expectProblem(yield* wire("GET", `/v1/events/${unknownId("evt")}`), 404)
      for (const event of aEvents) {
        assert.deepStrictEqual(expectProblem(yield* wire("GET", `/v1/events/${event.id}`), 404), unknownEvent)
      }

      // B's lists hold B's items only, with and without cursors made from A's ids.
      const aIds = new Set<string>([...aEndpoints.map((e) => e.id), ...aEvents.map((e) => e.id)])
      const bEndpoints = yield* b.client.endpoints.list({ query: {} })
      assert.deepStrictEqual(
        bEndpoints.data.map((e) => e.id),
        bEndpointIds
      )
      const bEvents = yield* b.client.events.list({ query: {} })
      assert.deepStrictEqual(
        bEvents.data.map((e) => e.id),
        bEventIds
      )
      const bTyped = yield* b.client.events.list({ query: { type: "order.created" } })
      assert.deepStrictEqual(
        bTyped.data.map((e) => e.id),
        bEventIds
      )
      // A cursor is valid only on the list, and for the tenant, that issued it: ids of A's, made-up values and A's
      // own cursors are all refused on B's lists (400), so they never page from some arbitrary point.
      const aEndpointCursor = (yield* a.client.endpoints.list({ query: { limit: 1 } })).nextCursor ?? ""
      const aEventCursor = (yield* a.client.events.list({ query: { limit: 1 } })).nextCursor ?? ""
      assert.notStrictEqual(aEndpointCursor, "")
      const everyId = [...aIds, ...bEndpointIds, ...bEventIds]
      const maxId = [...everyId].sort().at(-1) ?? ""
      for (const cursor of [...aIds, maxId, "zzzz", "ep_", "evt_", "ten_", aEndpointCursor, aEventCursor]) {
        for (const path of ["/v1/endpoints", "/v1/events", "/v1/events?type=order.created"]) {
          const separator = path.includes("?") ? "&" : "?"
          const refused = expectProblem(yield* wire("GET", `${path}${separator}cursor=${cursor}&limit=100`), 400)
          assert.match(String(refused.detail), /^The cursor is not one this list returned/, `${path} ${cursor}`)
        }
      }
      // Walking B's own lists with B's own cursors reaches exactly B's items, each once.
      const walked: Array<string> = []
      let next: string | null = null
      do {
        const page: { readonly data: ReadonlyArray<{ readonly id: string }>; readonly nextCursor: string | null } =
          yield* b.client.events.list({ query: next === null ? { limit: 1 } : { cursor: next, limit: 1 } })
        walked.push(...page.data.map((e) => e.id))
        next = page.nextCursor
      } while (next !== null && walked.length < 20)
      assert.deepStrictEqual(walked, bEventIds)
      const middle = yield* b.client.endpoints.list({ query: { limit: 1 } })
      assert.deepStrictEqual(
        (yield* b.client.endpoints.list({ query: { cursor: middle.nextCursor ?? "", limit: 5 } })).data.map(
          (e) => e.id
        ),
        [bOld.id]
      )

      // A's data is untouched by all of the above.
      for (let i = 0; i < aEndpoints.length; i++) {
        const endpoint = aEndpoints[i]
        if (endpoint === undefined) continue
        assert.deepStrictEqual(yield* a.client.endpoints.get({ params: { id: endpoint.id } }), endpoint)
        assert.deepStrictEqual(yield* a.client.endpoints.getSecret({ params: { id: endpoint.id } }), aSecrets[i])
      }
      const aList = yield* a.client.endpoints.list({ query: {} })
      assert.deepStrictEqual(
        aList.data.map((e) => e.id),
        aEndpoints.map((e) => e.id).reverse()
      )
      const aEventList = yield* a.client.events.list({ query: {} })
      assert.deepStrictEqual(
        aEventList.data.map((e) => e.id),
        aEvents.map((e) => e.id).reverse()
      )
    })
  )

  // -- Endpoints ------------------------------------------------------------------------------------------------

  it.effect("endpoints: create, get, list, patch, delete", () =>
    Effect.gen(function* () {
      const { client, apiKey } = yield* tenantWithClient("Endpoints CRUD")
      const auth = bearer(apiKey.key)
      const full = yield* client.endpoints.create({
        payload: {
          url: "https://example.com/webhooks/full",
          description: "Everything set",
          eventTypes: ["order.created", "invoice.*"],
          enabled: false,
          metadata: { team: "billing", env: "test" }
        }
      })
      assert.match(full.id, idPattern("ep"))
      assert.strictEqual(full.url, "https://example.com/webhooks/full")
      assert.strictEqual(full.description, "Everything set")
      assert.deepStrictEqual(full.eventTypes, ["order.created", "invoice.*"])
      assert.isFalse(full.enabled)
      assert.deepStrictEqual(full.metadata, { team: "billing", env: "test" })
      assert.match(full.createdAt, isoPattern)
      assert.strictEqual(full.updatedAt, full.createdAt)

      const minimal = yield* client.endpoints.create({ payload: { url: "https://example.com/webhooks/minimal" } })
      assert.strictEqual(minimal.description, "")
      assert.deepStrictEqual(minimal.eventTypes, [])
      assert.isTrue(minimal.enabled)
      assert.deepStrictEqual(minimal.metadata, {})
      // The create response never carries the secret.
      assert.notProperty(minimal, "secret")

      // On the wire: 201 JSON with exactly the documented fields (no secret).
      const raw = yield* request("/v1/endpoints", jsonInit("POST", { url: "https://example.com/webhooks/raw" }, auth))
      const rawBody = expectJson(raw, 201) as Record<string, unknown>
      assert.deepStrictEqual(Object.keys(rawBody).sort(), [
        "createdAt",
        "description",
        "enabled",
        "eventTypes",
        "filter",
        "headers",
        "health",
        "id",
        "metadata",
        "rateLimit",
        "updatedAt",
        "url"
      ])
      // A new endpoint's circuit is closed (the delivery worker's breaker; see test/breaker.test.ts).
      assert.deepStrictEqual(rawBody.health, { circuit: "closed", openUntil: null })
      assert.notMatch(raw.text, /whsec_/)
      const rawId = String(rawBody.id)
      expectJson(yield* request(`/v1/endpoints/${rawId}`, { headers: auth }), 200)
      const rawDelete = yield* request(`/v1/endpoints/${rawId}`, { method: "DELETE", headers: auth })
      assert.strictEqual(rawDelete.status, 204)
      assert.strictEqual(rawDelete.text, "")

      assert.deepStrictEqual(yield* client.endpoints.get({ params: { id: full.id } }), full)

      // List: newest first, paginated.
      const third = yield* client.endpoints.create({ payload: { url: "https://example.com/webhooks/third" } })
      const page1 = yield* client.endpoints.list({ query: { limit: 2 } })
      assert.deepStrictEqual(
        page1.data.map((e) => e.id),
        [third.id, minimal.id]
      )
      assert.isString(page1.nextCursor)
      const page2 = yield* client.endpoints.list({ query: { limit: 2, cursor: page1.nextCursor ?? "" } })
      assert.deepStrictEqual(page2.data, [full])
      assert.isNull(page2.nextCursor)

      // PATCH changes only what it names.
      const described = yield* client.endpoints.update({ params: { id: full.id }, payload: { description: "Changed" } })
      assert.deepStrictEqual({ ...described, updatedAt: full.updatedAt }, { ...full, description: "Changed" })
      assert.isTrue(described.updatedAt >= full.updatedAt)
      const patched = yield* client.endpoints.update({
        params: { id: full.id },
        payload: {
          url: "https://example.org/moved",
          eventTypes: [],
          enabled: true,
          metadata: {}
        }
      })
      assert.deepStrictEqual(
        { ...patched, updatedAt: described.updatedAt },
        {
          ...described,
          url: "https://example.org/moved",
          eventTypes: [],
          enabled: true,
          metadata: {}
        }
      )
      assert.deepStrictEqual(yield* client.endpoints.get({ params: { id: full.id } }), patched)
      const empty = yield* client.endpoints.update({ params: { id: full.id }, payload: {} })
      assert.deepStrictEqual({ ...empty, updatedAt: patched.updatedAt }, patched)

      // DELETE, then 404 for everything.
      yield* client.endpoints.delete({ params: { id: minimal.id } })
      assert.strictEqual(yield* failureTag(client.endpoints.get({ params: { id: minimal.id } })), "NotFound")
      assert.strictEqual(yield* failureTag(client.endpoints.delete({ params: { id: minimal.id } })), "NotFound")
      assert.strictEqual(yield* failureTag(client.endpoints.getSecret({ params: { id: minimal.id } })), "NotFound")
      assert.strictEqual(
        yield* failureTag(client.endpoints.update({ params: { id: minimal.id }, payload: { enabled: false } })),
        "NotFound"
      )
      const remaining = yield* client.endpoints.list({ query: {} })
      assert.deepStrictEqual(
        remaining.data.map((e) => e.id),
        [third.id, full.id]
      )
    })
  )

  it.effect("endpoints: the signing secret is whsec_ + base64; rotation keeps the previous one for 24 hours", () =>
    Effect.gen(function* () {
      const { client, apiKey } = yield* tenantWithClient("Secrets")
      const endpoint = yield* client.endpoints.create({ payload: { url: "https://example.com/signed" } })
      const other = yield* client.endpoints.create({ payload: { url: "https://example.com/other" } })
      const initial = yield* client.endpoints.getSecret({ params: { id: endpoint.id } })
      assert.match(initial.secret, /^whsec_[A-Za-z0-9+/]+={0,2}$/)
      assert.isAtLeast(Buffer.from(initial.secret.slice("whsec_".length), "base64").length, 24)
      assert.isNull(initial.previousSecret)
      assert.isNull(initial.previousSecretExpiresAt)
      // Reading it again gives the same secret; another endpoint has another.
      assert.deepStrictEqual(yield* client.endpoints.getSecret({ params: { id: endpoint.id } }), initial)
      const otherSecret = yield* client.endpoints.getSecret({ params: { id: other.id } })
      assert.notStrictEqual(otherSecret.secret, initial.secret)

      const before = Date.now()
      const rotated = yield* client.endpoints.rotateSecret({ params: { id: endpoint.id } })
      const after = Date.now()
      assert.match(rotated.secret, /^whsec_[A-Za-z0-9+/]+={0,2}$/)
      assert.notStrictEqual(rotated.secret, initial.secret)
      assert.strictEqual(rotated.previousSecret, initial.secret)
      const expiresAt = Date.parse(rotated.previousSecretExpiresAt ?? "")
      const day = Duration.toMillis(Duration.hours(24))
      // The database clock may be a little off the test's: allow a minute either way.
      assert.isAtLeast(expiresAt, before + day - 60_000)
      assert.isAtMost(expiresAt, after + day + 60_000)
      assert.deepStrictEqual(yield* client.endpoints.getSecret({ params: { id: endpoint.id } }), rotated)

      // Rotating again: the previous secret is the one just replaced, with a fresh 24 hours.
      const twice = yield* client.endpoints.rotateSecret({ params: { id: endpoint.id } })
      assert.strictEqual(twice.previousSecret, rotated.secret)
      assert.notStrictEqual(twice.secret, rotated.secret)
      assert.isAtLeast(Date.parse(twice.previousSecretExpiresAt ?? ""), expiresAt)

      // Rotation touched only that endpoint, and bumped its updatedAt.
      assert.deepStrictEqual(yield* client.endpoints.getSecret({ params: { id: other.id } }), otherSecret)
      const touched = yield* client.endpoints.get({ params: { id: endpoint.id } })
      assert.isTrue(touched.updatedAt >= endpoint.updatedAt)

      // On the wire.
      const auth = bearer(apiKey.key)
      const secret = expectJson(yield* request(`/v1/endpoints/${endpoint.id}/secret`, { headers: auth }), 200)
      assert.deepStrictEqual(secret, twice)
      const rotatedRaw = expectJson(
        yield* request(`/v1/endpoints/${endpoint.id}/secret/rotate`, { method: "POST", headers: auth }),
        200
      ) as { previousSecret: string }
      assert.strictEqual(rotatedRaw.previousSecret, twice.secret)
    })
  )

  it.effect("endpoints: unknown and malformed ids are 404 problems for every operation", () =>
    Effect.gen(function* () {
      const { client, apiKey } = yield* tenantWithClient("Endpoint ids")
      const kept = yield* client.endpoints.create({ payload: { url: "https://example.com/kept" } })
      const auth = bearer(apiKey.key)
      for (const id of [...malformedIds("ep"), unknownId("ep"), kept.id.toLowerCase()]) {
        const path = `/v1/endpoints/${encodeURIComponent(id)}`
        expectProblem(yield* request(path, { headers: auth }), 404)
        expectProblem(yield* request(path, jsonInit("PATCH", { description: "x" }, auth)), 404)
        expectProblem(yield* request(path, { method: "DELETE", headers: auth }), 404)
        expectProblem(yield* request(`${path}/secret`, { headers: auth }), 404)
        expectProblem(yield* request(`${path}/secret/rotate`, { method: "POST", headers: auth }), 404)
      }
      assert.strictEqual(yield* failureTag(client.endpoints.get({ params: { id: unknownId("ep") } })), "NotFound")
      assert.strictEqual(yield* failureTag(client.endpoints.rotateSecret({ params: { id: "nope" } })), "NotFound")
      assert.deepStrictEqual(yield* client.endpoints.get({ params: { id: kept.id } }), kept)
    })
  )

  // -- Events ---------------------------------------------------------------------------------------------------

  it.effect("events: publish → 202 with the event and deliveriesQueued; list newest first, by type, paginated", () =>
    Effect.gen(function* () {
      const { client, apiKey } = yield* tenantWithClient("Events")
      const auth = bearer(apiKey.key)
      for (const eventTypes of [[], ["order.created"], ["order.*"], ["invoice.paid"]]) {
        yield* client.endpoints.create({ payload: { url: "https://example.com/e", eventTypes } })
      }
      yield* client.endpoints.create({ payload: { url: "https://example.com/off", enabled: false } })

      const first = yield* client.events.publish({
        payload: { type: "order.created", data: { orderId: "o_1", amount: 4200, nested: { ok: true, list: [1, "a"] } } }
      })
      assert.match(first.event.id, idPattern("evt"))
      assert.strictEqual(first.event.type, "order.created")
      assert.deepStrictEqual(first.event.data, { orderId: "o_1", amount: 4200, nested: { ok: true, list: [1, "a"] } })
      assert.match(first.event.occurredAt, isoPattern)
      assert.match(first.event.createdAt, isoPattern)
      assert.isAtMost(Math.abs(Date.parse(first.event.occurredAt) - Date.now()), 60_000, "occurredAt defaults to now")
      // [] (all), "order.created" and "order.*" match; "invoice.paid" does not; the disabled endpoint never does.
      assert.strictEqual(first.deliveriesQueued, 3)

      const second = yield* client.events.publish({
        payload: { type: "invoice.paid", data: {}, occurredAt: "2026-01-02T03:04:05+02:00" }
      })
      assert.strictEqual(second.event.occurredAt, "2026-01-02T01:04:05.000Z")
      assert.strictEqual(second.deliveriesQueued, 2)

      // On the wire: 202 with JSON.
      const raw = yield* request("/v1/events", jsonInit("POST", { type: "order", data: { via: "fetch" } }, auth))
      const third = expectJson(raw, 202) as { event: { id: string; type: string }; deliveriesQueued: number }
      assert.strictEqual(third.event.type, "order")
      assert.strictEqual(third.deliveriesQueued, 1, "`order.*` does not match `order` itself")
      const fourth = yield* client.events.publish({ payload: { type: "order.created", data: { orderId: "o_2" } } })

      const order = [fourth.event.id, third.event.id, second.event.id, first.event.id]
      const all = yield* client.events.list({ query: {} })
      assert.deepStrictEqual(
        all.data.map((e) => e.id),
        order
      )
      assert.isNull(all.nextCursor)
      assert.deepStrictEqual(all.data[3], first.event)

      // Pagination: limit 1 walks the same order, one page each.
      const walked: Array<string> = []
      let cursor: string | undefined
      do {
        const page = yield* client.events.list({ query: cursor === undefined ? { limit: 1 } : { limit: 1, cursor } })
        assert.strictEqual(page.data.length, 1)
        walked.push(...page.data.map((e) => e.id))
        cursor = page.nextCursor ?? undefined
      } while (cursor !== undefined && walked.length < 10)
      assert.deepStrictEqual(walked, order)

      // The type filter, alone and with pagination.
      const orders = yield* client.events.list({ query: { type: "order.created" } })
      assert.deepStrictEqual(
        orders.data.map((e) => e.id),
        [fourth.event.id, first.event.id]
      )
      const ordersPage = yield* client.events.list({ query: { type: "order.created", limit: 1 } })
      assert.deepStrictEqual(
        ordersPage.data.map((e) => e.id),
        [fourth.event.id]
      )
      assert.isString(ordersPage.nextCursor)
      const ordersNext = yield* client.events.list({
        query: { type: "order.created", limit: 1, cursor: ordersPage.nextCursor ?? "" }
      })
      assert.deepStrictEqual(
        ordersNext.data.map((e) => e.id),
        [first.event.id]
      )
      assert.isNull(ordersNext.nextCursor)
      // A filter is exact: no wildcard, no prefix.
      assert.deepStrictEqual((yield* client.events.list({ query: { type: "order" } })).data.length, 1)
      assert.deepStrictEqual((yield* client.events.list({ query: { type: "nothing.here" } })).data, [])
      // A malformed type filter is a 400 problem naming the query field.
      const badType = expectProblem(yield* request("/v1/events?type=not%20valid", { headers: auth }), 400)
      const issues = badType.errors as ReadonlyArray<{ readonly path: ReadonlyArray<string> }>
      assert.deepStrictEqual(issues[0]?.path, ["query", "type"])

      // Get.
      assert.deepStrictEqual(yield* client.events.get({ params: { id: second.event.id } }), second.event)
      assert.deepStrictEqual(
        expectJson(yield* request(`/v1/events/${first.event.id}`, { headers: auth }), 200),
        first.event
      )
      for (const id of [...malformedIds("evt"), unknownId("evt"), first.event.id.toLowerCase()]) {
        expectProblem(yield* request(`/v1/events/${encodeURIComponent(id)}`, { headers: auth }), 404)
      }
      assert.strictEqual(yield* failureTag(client.events.get({ params: { id: unknownId("evt") } })), "NotFound")
    })
  )
})

// ---------------------------------------------------------------------------------------------------------------
// Without ADMIN_TOKEN: 404 outside development, open in development
// ---------------------------------------------------------------------------------------------------------------

layer(TestDatabaseLive, { excludeTestServices: true })("admin API without ADMIN_TOKEN", (it) => {
  const adminRoutes: ReadonlyArray<readonly [method: string, path: string, body?: unknown]> = [
    ["POST", "/admin/tenants", { name: "Nobody" }],
    ["POST", "/admin/tenants", { name: "" }],
    ["GET", "/admin/tenants"],
    ["GET", "/admin/tenants?limit=0"],
    ["GET", `/admin/tenants/${unknownId("ten")}`],
    ["GET", "/admin/tenants/not-an-id"],
    ["POST", `/admin/tenants/${unknownId("ten")}/api-keys`],
    ["DELETE", `/admin/api-keys/${unknownId("key")}`]
  ]

  for (const appEnv of ["staging", "production"] as const) {
    it.effect(`${appEnv}: every admin route answers 404, as an unknown route would, with or without a token`, () =>
      Effect.gen(function* () {
        const server = yield* startTestServer({ config: { appEnv, adminToken: Option.none() } })
        // An operator reading the startup log learns the admin API is off, once.
        const off = server.logs.filter((line) => line.includes("ADMIN_TOKEN is unset: the admin API is off"))
        assert.strictEqual(off.length, 1, server.logs.join("\n"))
        yield* Effect.gen(function* () {
          for (const [method, path, body] of adminRoutes) {
            for (const headers of [{}, bearer("anything"), { authorization: "" }]) {
              const init: RequestOptions = body === undefined ? { method, headers } : jsonInit(method, body, headers)
              const response = yield* request(path, init)
              const problem = expectProblem(response, 404)
              const pathname = path.split("?")[0] ?? path
              assert.deepStrictEqual(problem, {
                type: "about:blank",
                title: "Not Found",
                status: 404,
                detail: `No route matches ${method} ${pathname}.`
              })
              // Word for word what a route that does not exist answers (same method, a path nobody serves).
              const unknown = yield* request(pathname.replace("/admin/", "/no-such-admin/"), init)
              assert.deepStrictEqual(
                { ...(expectProblem(unknown, 404) as object), detail: "" },
                { ...problem, detail: "" }
              )
            }
          }
          const anonymous = yield* apiClient("anything")
          assert.strictEqual(yield* failureTag(anonymous.admin.listTenants({ query: {} })), "NotFound")
          // The tenant API is still there.
          expectProblem(yield* request("/v1/endpoints"), 401)
        }).pipe(Effect.provideService(TestServer, server))
      })
    )
  }

  it.effect("development: the admin API is open", () =>
    Effect.gen(function* () {
      const server = yield* startTestServer({ config: { appEnv: "development", adminToken: Option.none() } })
      const open = server.logs.filter((line) => line.includes("ADMIN_TOKEN is unset: the admin API is open"))
      assert.strictEqual(open.length, 1, server.logs.join("\n"))
      yield* Effect.gen(function* () {
        const open = yield* apiClient()
        const created = yield* open.admin.createTenant({ payload: { name: "Dev tenant" } })
        assert.match(created.apiKey.key, apiKeyPattern)
        const detail = yield* open.admin.getTenant({ params: { id: created.tenant.id } })
        assert.strictEqual(detail.name, "Dev tenant")
        const listed = yield* open.admin.listTenants({ query: {} })
        assert.isTrue(listed.data.some((t) => t.id === created.tenant.id))
        // Any or no header at all.
        const raw = yield* request("/admin/tenants", jsonInit("POST", { name: "Also dev" }, bearer("whatever")))
        expectJson(raw, 201)
        const key = yield* open.admin.createApiKey({ params: { id: created.tenant.id } })
        yield* open.admin.revokeApiKey({ params: { id: key.id } })
        // Still 404 for unknown ids.
        assert.strictEqual(yield* failureTag(open.admin.getTenant({ params: { id: "nope" } })), "NotFound")
      }).pipe(Effect.provideService(TestServer, server))
    })
  )
})
