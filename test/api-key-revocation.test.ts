import { randomBytes } from "node:crypto"
import { PgClient } from "@effect/sql-pg"
import { assert, layer } from "@effect/vitest"
import { Context, Duration, Effect, Layer, Option, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"
import { ApiKeyAuthLive, apiKeyCacheTtl } from "../layers/ApiKeyAuthLive.ts"
import { ApiKeysLive } from "../layers/ApiKeysLive.ts"
import { makeApiKeyUse } from "../layers/ApiKeyUse.ts"
import { ApiKeyAuth } from "../services/ApiKeyAuth.ts"
import { ApiKeys } from "../services/ApiKeys.ts"
import { type ApiKeyId, newId, type TenantId } from "../src/domain/Ids.ts"
import { appConfigTest } from "./support/appConfig.ts"
import { createTenant, request } from "./support/http.ts"
import { isDefined, poll } from "./support/poll.ts"
import { SharedDatabase, testServerWithSql } from "./support/sharedDatabase.ts"
import { TestSqlLive } from "./support/testDatabase.ts"

/**
 * What only a second process shows, and what needs exact control of time: a revocation reaching another replica's key
 * cache through NOTIFY, two concurrent revocations of a tenant's last two full keys, and the once-a-minute
 * `last_used_at` write under TestClock.
 */

/**
 * Another replica's view of the database: its own ApiKeyAuth (and the ApiKeys over it), on a pool of its own that
 * LISTENs, as a second server process would.
 */
const otherReplica = Effect.gen(function* () {
  const shared = yield* SharedDatabase
  const url = Redacted.make(shared.url)
  const database = PgClient.layer({ url, maxConnections: 4 })
  const config = appConfigTest({ databaseUrl: Option.some(url), databasePoolMax: 4 })
  const replica = ApiKeysLive.pipe(
    Layer.provideMerge(ApiKeyAuthLive),
    Layer.provideMerge(Layer.merge(database, config))
  )
  const context = yield* Layer.build(replica)
  return { auth: Context.get(context, ApiKeyAuth), keys: Context.get(context, ApiKeys) }
})

const issue = (bearer: string, name: string) =>
  Effect.map(request("/v1/api-keys", { bearer, json: { name } }), (response) => {
    assert.strictEqual(response.status, 201, response.text)
    return JSON.parse(response.text) as { readonly id: ApiKeyId; readonly key: string }
  })

layer(testServerWithSql(), { excludeTestServices: true })("API key revocation across replicas", (it) => {
  it.effect("a revocation on one server reaches another replica's cache at once (NOTIFY), not after 5 s", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const other = yield* otherReplica
        const tenant = yield* createTenant("Replicas")
        const spare = yield* issue(tenant.apiKey, "spare")
        for (const revoked of [
          { key: spare.key, revoke: request(`/v1/api-keys/${spare.id}`, { method: "DELETE", bearer: tenant.apiKey }) },
          {
            key: tenant.apiKey,
            revoke: request(`/admin/api-keys/${tenant.created.apiKey.id}`, { method: "DELETE" })
          }
        ]) {
          // Cached on the other replica, for 5 s unless it is told.
          assert.isTrue(Option.isSome(yield* other.auth.authenticate(revoked.key)))
          const cachedAt = Date.now()
          assert.strictEqual((yield* revoked.revoke).status, 204)
          yield* poll(
            "the other replica to refuse the revoked key",
            other.auth.authenticate(revoked.key),
            Option.isNone,
            { timeoutMs: Duration.toMillis(apiKeyCacheTtl) - 500 }
          )
          assert.isBelow(Date.now() - cachedAt, Duration.toMillis(apiKeyCacheTtl), "before the cache entry expired")
        }
      })
    )
  )

  it.effect("invalidateTenant: every cached key of the tenant is looked up again, other tenants' are kept", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const other = yield* otherReplica
        const tenant = yield* createTenant("Invalidated")
        const bystander = yield* createTenant("Bystander")
        const second = yield* issue(tenant.apiKey, "second")
        for (const key of [tenant.apiKey, second.key, bystander.apiKey]) {
          assert.isTrue(Option.isSome(yield* other.auth.authenticate(key)))
        }
        // Revoked behind every cache's back (no NOTIFY): only an invalidation makes the replica ask again.
        const sql = yield* SqlClient.SqlClient
        yield* sql`UPDATE api_keys SET revoked_at = now() WHERE tenant_id IN (${tenant.tenantId}, ${bystander.tenantId})`
        yield* other.auth.invalidateTenant(tenant.tenantId)
        assert.isTrue(Option.isNone(yield* other.auth.authenticate(tenant.apiKey)))
        assert.isTrue(Option.isNone(yield* other.auth.authenticate(second.key)))
        assert.isTrue(Option.isSome(yield* other.auth.authenticate(bystander.apiKey)), "still cached (5 s)")
      })
    )
  )

  it.effect("two concurrent revocations of the last two full keys: exactly one succeeds", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { keys } = yield* otherReplica
        for (let round = 0; round < 10; round++) {
          const tenant = yield* createTenant(`Race ${round}`)
          const second = yield* issue(tenant.apiKey, "second")
          const tenantId = tenant.tenantId as TenantId
          const outcomes = yield* Effect.all(
            [keys.revoke(tenantId, tenant.created.apiKey.id, false), keys.revoke(tenantId, second.id, false)],
            { concurrency: "unbounded" }
          )
          assert.sameMembers([...outcomes], ["revoked", "last-full-key"], `round ${round}`)
          const sql = yield* SqlClient.SqlClient
          const [live] = yield* sql<{ readonly n: number }>`
            SELECT count(*)::int AS n FROM api_keys WHERE tenant_id = ${tenantId} AND revoked_at IS NULL`
          assert.strictEqual(live?.n, 1)
        }
      })
    )
  )
})

/** A tenant and `count` keys of it, written directly (ApiKeyUse needs only the rows). */
const keysOfNewTenant = (count: number) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const tenantId = yield* newId("ten")
    yield* sql`INSERT INTO tenants (id, name) VALUES (${tenantId}, 'Last used')`
    const ids: Array<ApiKeyId> = []
    for (let i = 0; i < count; i++) {
      const id = (yield* newId("key")) as ApiKeyId
      yield* sql`
        INSERT INTO api_keys (id, tenant_id, key_hash, key_prefix) VALUES (${id}, ${tenantId}, ${randomBytes(32)}, 'ck_x')`
      ids.push(id)
    }
    return ids
  })

const lastUsed = (id: ApiKeyId) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ readonly last_used_at: Date | null; readonly recent: boolean | null }>`
      SELECT last_used_at, last_used_at > now() - interval '1 minute' AS recent FROM api_keys WHERE id = ${id}`
    return row
  })

/** Real time for the poll, while the recorder runs on the TestClock. */
const written = (id: ApiKeyId, what: string) =>
  TestClock.withLive(
    poll(
      what,
      Effect.map(lastUsed(id), (row) => (row?.recent === true ? row : undefined)),
      isDefined
    )
  )

layer(TestSqlLive)("API key use, on the TestClock", (it) => {
  it.effect("at most one last_used_at write per key per minute from a process; the statement guards replicas", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const use = yield* makeApiKeyUse(sql)
        const [key, fence, guarded] = yield* keysOfNewTenant(3)
        if (key === undefined || fence === undefined || guarded === undefined) return assert.fail("no keys")

        yield* use.used(key)
        yield* written(key, "the first use written")
        // Made old, so the statement itself would allow a write: only this process's memory holds it back.
        yield* sql`UPDATE api_keys SET last_used_at = now() - interval '2 minutes' WHERE id = ${key}`
        yield* TestClock.adjust(Duration.seconds(59))
        yield* use.used(key)
        // One writer, in order: once the fence is written, a write queued for `key` before it would be too.
        yield* use.used(fence)
        yield* written(fence, "the fence written")
        assert.isFalse((yield* lastUsed(key))?.recent, "not written again within the minute")

        yield* TestClock.adjust(Duration.seconds(2))
        yield* use.used(key)
        yield* written(key, "the use a minute later written")

        // Another replica wrote it a moment ago: this process's first write for the key changes nothing.
        yield* sql`UPDATE api_keys SET last_used_at = now() - interval '10 seconds' WHERE id = ${guarded}`
        const before = (yield* lastUsed(guarded))?.last_used_at
        yield* use.used(guarded)
        yield* TestClock.adjust(Duration.minutes(2))
        yield* use.used(fence)
        yield* TestClock.withLive(
          poll(
            "the second fence written",
            Effect.map(lastUsed(fence), (row) => row?.last_used_at),
            (at) =>
              at !== null &&
              at !== undefined &&
              at.getTime() > Date.now() - 30_000 &&
              at.getTime() !== before?.getTime()
          )
        )
        assert.deepStrictEqual((yield* lastUsed(guarded))?.last_used_at, before)
      })
    )
  )
})
