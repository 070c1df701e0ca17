import { assert, describe, it, layer } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, Layer, type Schema } from "effect"
import { SqlClient } from "effect/sql"
import { inject } from "vitest"
import { completionInWrite } from "../layers/IdempotencyKeySql.ts"
import { makeIdempotencyStore, purgeExpiredKeys } from "../layers/IdempotencyStoreLive.ts"
import { makeSecretBox } from "../layers/SecretBoxLive.ts"
import { IdempotencyStore, type KeyClaim } from "../services/IdempotencyStore.ts"
import { SecretBox, SecretContext } from "../services/SecretBox.ts"
import { bodyDigest, fingerprintOf, parseIdempotencyKey } from "../src/http/Idempotency.ts"
import { testEncryptionKeys } from "./support/appConfig.ts"
import { appProcess } from "./support/apps.ts"
import { parseConfig } from "./support/defaultConfig.ts"
import { callUrl, createTenant, isReplay, type RequestOptions, request } from "./support/http.ts"
import { poll, pollPromise } from "./support/poll.ts"
import { expectProblem } from "./support/problems.ts"
import { SharedDatabase, testServerWithSql } from "./support/sharedDatabase.ts"
import { countTenantRows } from "./support/tenantRows.ts"
import { TestServer } from "./support/testServer.ts"

// ---------------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------------

const keyRow = (scope: string, key: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{
      readonly state: string
      readonly response_status: number | null
      readonly response_body: string | null
      readonly response_ref: unknown
      readonly fingerprint: string
      readonly ttl_seconds: number | null
    }>`
      SELECT state, response_status, response_body, response_ref, fingerprint,
             extract(epoch FROM expires_at - completed_at)::float8 AS ttl_seconds
      FROM idempotency_keys WHERE scope = ${scope} AND key = ${key}`
    return row
  })

/** Polls until the key has expired (IDEMPOTENCY_TTL after its response), by the database's clock. */
const untilExpired = (scope: string, key: string) =>
  poll(
    "the key to expire",
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const [row] = yield* sql<{ readonly expired: boolean }>`
        SELECT expires_at <= now() AS expired FROM idempotency_keys WHERE scope = ${scope} AND key = ${key}`
      return row
    }),
    (row) => row?.expired === true
  )

const createEndpoint = (apiKey: string, eventTypes: ReadonlyArray<string> = []) =>
  Effect.gen(function* () {
    const { baseUrl } = yield* TestServer
    const reply = yield* request("/v1/endpoints", { bearer: apiKey, json: { url: `${baseUrl}/receiver`, eventTypes } })
    assert.strictEqual(reply.status, 201, reply.text)
    return (JSON.parse(reply.text) as { readonly id: string }).id
  })

/** A store beside the server's, with the server's key (the test configuration's). */
const storeWith = (options: { readonly ttl: Duration.Duration; readonly lockTimeout: Duration.Duration }) =>
  makeIdempotencyStore(options).pipe(Effect.provideService(SecretBox, makeSecretBox(testEncryptionKeys)))

let keys = 0
const freshKey = () => `key-${Date.now()}-${++keys}`

// ---------------------------------------------------------------------------------------------------------------
// The header and the fingerprint
// ---------------------------------------------------------------------------------------------------------------

describe("Idempotency-Key header", () => {
  it.each([
    ['"8e03978e-40d5-43e8-bc93-6894a57f9324"', "8e03978e-40d5-43e8-bc93-6894a57f9324"],
    ["8e03978e-40d5-43e8-bc93-6894a57f9324", "8e03978e-40d5-43e8-bc93-6894a57f9324"],
    ["  abc  ", "abc"],
    ['"a\\"b\\\\c"', 'a"b\\c'],
    ["x".repeat(255), "x".repeat(255)],
    [`"${"x".repeat(255)}"`, "x".repeat(255)],
    ["!~", "!~"]
  ])("%s → %s", (raw, key) => assert.strictEqual(parseIdempotencyKey(raw), key))

  it.each([
    [""],
    ['""'],
    ["x".repeat(256)],
    [`"${"x".repeat(256)}"`],
    ["a b"],
    ['"a b"'],
    ["a, b"],
    ['"a", "b"'],
    ['"abc"; p=1'],
    ['"abc'],
    ['"a\\nb"'],
    ["ключ"],
    ['"ключ"'],
    ["a\tb"]
  ])("%j is rejected", (raw) => assert.isUndefined(parseIdempotencyKey(raw)))
})

describe("fingerprint", () => {
  const bytes = (text: string) => new TextEncoder().encode(text)
  it("ignores whitespace between the tokens of a JSON body, nothing else: data is delivered as sent", () => {
    assert.strictEqual(
      bodyDigest(bytes('{"a":1,"b":{"c":[1,2],"d":"x y"}}')),
      bodyDigest(bytes(' {\n\t"a" : 1 ,"b":{ "c":[ 1,2 ] , "d":"x y"}}\r\n'))
    )
    // Member order, number text and string escapes reach the receiver, so they make another request.
    assert.notStrictEqual(bodyDigest(bytes('{"a":1,"b":2}')), bodyDigest(bytes('{"b":2,"a":1}')))
    assert.notStrictEqual(bodyDigest(bytes('{"a":2.50}')), bodyDigest(bytes('{"a":2.5}')))
    assert.notStrictEqual(bodyDigest(bytes('{"a":"\\u00e9"}')), bodyDigest(bytes('{"a":"é"}')))
    assert.notStrictEqual(bodyDigest(bytes('{"a":"x y"}')), bodyDigest(bytes('{"a":"xy"}')))
    assert.notStrictEqual(bodyDigest(bytes('{"a":1}')), bodyDigest(bytes('{"a":2}')))
    assert.notStrictEqual(bodyDigest(bytes('{"a":[1,2]}')), bodyDigest(bytes('{"a":[2,1]}')))
  })
  it("covers method and path", () => {
    const body = bytes("{}")
    assert.notStrictEqual(fingerprintOf("POST", "/v1/events", body), fingerprintOf("POST", "/v1/endpoints", body))
    assert.notStrictEqual(
      fingerprintOf("PATCH", "/v1/endpoints/ep_1", body),
      fingerprintOf("PATCH", "/v1/endpoints/ep_2", body)
    )
    assert.notStrictEqual(fingerprintOf("POST", "/x", body), fingerprintOf("PATCH", "/x", body))
  })
})

// ---------------------------------------------------------------------------------------------------------------
// Every status path, in process
// ---------------------------------------------------------------------------------------------------------------

/** The server keeps keys as long as the real parser's default IDEMPOTENCY_TTL says, so the test below checks it. */
const onDefaultIdempotency = Layer.unwrap(
  Effect.map(parseConfig("production"), ({ idempotency }) => testServerWithSql({ config: { idempotency } }))
)

layer(onDefaultIdempotency, { excludeTestServices: true })("idempotency keys", (it) => {
  it.effect("new → 202; same key and request → the stored status and body with Idempotent-Replayed; one event", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Idem replay")
      yield* createEndpoint(tenant.apiKey)
      const key = freshKey()
      const first = yield* request("/v1/events", {
        bearer: tenant.apiKey,
        idempotencyKey: key,
        json: { type: "order.created", data: { n: 1 } }
      })
      assert.strictEqual(first.status, 202, first.text)
      assert.isFalse(isReplay(first))
      // The same request again, in the SF-string form and with whitespace between the body's tokens.
      const again = yield* request("/v1/events", {
        bearer: tenant.apiKey,
        idempotencyKey: `"${key}"`,
        raw: '{ "type": "order.created", "data": { "n": 1 } }'
      })
      assert.strictEqual(again.status, 202, again.text)
      assert.isTrue(isReplay(again))
      assert.strictEqual(again.text, first.text)
      assert.strictEqual(again.headers.get("content-type"), first.headers.get("content-type"))
      assert.isNotNull(again.headers.get("x-request-id"), "the edge still finishes a replay")
      assert.strictEqual(yield* countTenantRows("events", tenant.tenantId), 1)
      assert.strictEqual(yield* countTenantRows("deliveries", tenant.tenantId), 1)
      // The publish completed its key in its own statement: the key holds a ref to the event, not response bytes;
      // the replay above was rendered again from the event, byte for byte.
      const row = yield* keyRow(tenant.tenantId, key)
      assert.strictEqual(row?.state, "completed")
      assert.isNull(row?.response_body)
      const published = JSON.parse(first.text) as { event: { id: string } }
      assert.deepStrictEqual(row?.response_ref, { event: published.event.id, deliveriesQueued: 1 })
      assert.strictEqual(row?.ttl_seconds, 300, "IDEMPOTENCY_TTL defaults to 5 minutes, counted from the response")
    })
  )

  it.effect("without a key requests run as usual (the key is optional by default)", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Idem optional")
      for (let i = 0; i < 2; i++) {
        const reply = yield* request("/v1/events", { bearer: tenant.apiKey, json: { type: "a", data: {} } })
        assert.strictEqual(reply.status, 202, reply.text)
        assert.isNull(reply.headers.get("idempotent-replayed"))
      }
      assert.strictEqual(yield* countTenantRows("events", tenant.tenantId), 2)
    })
  )

  it.effect("same key, different body, path or method → 422 problem, nothing written", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Idem mismatch")
      const key = freshKey()
      const first = yield* request("/v1/events", {
        bearer: tenant.apiKey,
        idempotencyKey: key,
        json: { type: "a", data: { n: 1 } }
      })
      assert.strictEqual(first.status, 202, first.text)
      const otherBody = yield* request("/v1/events", {
        bearer: tenant.apiKey,
        idempotencyKey: key,
        json: { type: "a", data: { n: 2 } }
      })
      const problem = expectProblem(otherBody, 422)
      assert.include(String(problem.detail), "different request")
      const otherRoute = yield* request("/v1/endpoints", {
        bearer: tenant.apiKey,
        idempotencyKey: key,
        json: { url: "http://127.0.0.1:9999/x", eventTypes: [] }
      })
      expectProblem(otherRoute, 422)
      assert.strictEqual(yield* countTenantRows("events", tenant.tenantId), 1)
      assert.strictEqual(yield* countTenantRows("endpoints", tenant.tenantId), 0)
    })
  )

  it.effect("a key another request holds → 409; once that claim is older than the lock timeout it is reclaimed", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const tenant = yield* createTenant("Idem in progress")
      const key = freshKey()
      const body = JSON.stringify({ type: "a", data: { n: 1 } })
      // A claim exactly as a request in flight leaves it (claimed and committed, not completed).
      yield* sql`
        INSERT INTO idempotency_keys (scope, key, fingerprint, method, path, state, lock_token, expires_at)
        VALUES (${tenant.tenantId}, ${key}, ${fingerprintOf("POST", "/v1/events", new TextEncoder().encode(body))},
                'POST', '/v1/events', 'in_progress', 'someone-else', now() + interval '5 minutes')`
      const busy = yield* request("/v1/events", { bearer: tenant.apiKey, idempotencyKey: key, raw: body })
      const problem = expectProblem(busy, 409)
      assert.include(String(problem.detail), "still being processed")
      // A different body is a different request even while the first runs.
      expectProblem(
        yield* request("/v1/events", { bearer: tenant.apiKey, idempotencyKey: key, json: { type: "b", data: {} } }),
        422
      )
      assert.strictEqual(yield* countTenantRows("events", tenant.tenantId), 0)

      // The holder crashed 61 s ago (IDEMPOTENCY_LOCK_TIMEOUT is 60 s): the next request takes the key over.
      yield* sql`UPDATE idempotency_keys SET locked_at = now() - interval '61 seconds' WHERE key = ${key}`
      const reclaimed = yield* request("/v1/events", { bearer: tenant.apiKey, idempotencyKey: key, raw: body })
      assert.strictEqual(reclaimed.status, 202, reclaimed.text)
      assert.isFalse(isReplay(reclaimed))
      const replayed = yield* request("/v1/events", { bearer: tenant.apiKey, idempotencyKey: key, raw: body })
      assert.isTrue(isReplay(replayed))
      assert.strictEqual(yield* countTenantRows("events", tenant.tenantId), 1)
    })
  )

  it.effect("malformed keys → 400 problem, and the request does not run", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Idem malformed")
      const bad: ReadonlyArray<RequestOptions> = [
        { idempotencyKey: "" },
        { idempotencyKey: '""' },
        { idempotencyKey: "x".repeat(256) },
        { idempotencyKey: "a b" },
        { idempotencyKey: '"unterminated' },
        { idempotencyKey: '"abc";p=1' },
        {
          headers: [
            ["idempotency-key", "one"],
            ["idempotency-key", "two"]
          ]
        }
      ]
      for (const options of bad) {
        const reply = yield* request("/v1/events", { ...options, bearer: tenant.apiKey, json: { type: "a", data: {} } })
        const problem = expectProblem(reply, 400)
        assert.include(String(problem.detail), "Idempotency-Key", JSON.stringify(options))
      }
      assert.strictEqual(yield* countTenantRows("events", tenant.tenantId), 0)
    })
  )

  it.effect("keys are scoped by tenant: the same key in two tenants is two requests", () =>
    Effect.gen(function* () {
      const a = yield* createTenant("Idem scope A")
      const b = yield* createTenant("Idem scope B")
      const key = freshKey()
      for (const tenant of [a, b]) {
        const reply = yield* request("/v1/events", {
          bearer: tenant.apiKey,
          idempotencyKey: key,
          json: { type: "a", data: {} }
        })
        assert.strictEqual(reply.status, 202, reply.text)
        assert.isFalse(isReplay(reply))
        assert.strictEqual(yield* countTenantRows("events", tenant.tenantId), 1)
      }
    })
  )

  it.effect("admin requests use the admin scope: creating a tenant twice with one key creates it once", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const key = freshKey()
      const name = `Idem admin ${key}`
      const first = yield* request("/admin/tenants", { idempotencyKey: key, json: { name } })
      assert.strictEqual(first.status, 201, first.text)
      const again = yield* request("/admin/tenants", { idempotencyKey: key, json: { name } })
      assert.strictEqual(again.status, 201, again.text)
      assert.isTrue(isReplay(again))
      assert.strictEqual(again.text, first.text)
      const [row] = yield* sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM tenants WHERE name = ${name}`
      assert.strictEqual(row?.n, 1)
      assert.strictEqual((yield* keyRow("admin", key))?.state, "completed")
    })
  )

  it.effect("PATCH is covered; a 4xx from the handler is stored and replayed", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Idem patch")
      const endpoint = yield* createEndpoint(tenant.apiKey)
      const key = freshKey()
      const patch = (id: string, description: string) =>
        request(`/v1/endpoints/${id}`, {
          method: "PATCH",
          bearer: tenant.apiKey,
          idempotencyKey: key,
          json: { description }
        })
      const first = yield* patch(endpoint, "one")
      assert.strictEqual(first.status, 200, first.text)
      const again = yield* patch(endpoint, "one")
      assert.isTrue(isReplay(again))
      assert.strictEqual(again.text, first.text)
      // Every endpoint but the publish stores its response bytes, written in the handler's transaction, sealed.
      const stored = yield* keyRow(tenant.tenantId, key)
      assert.strictEqual(stored?.response_status, 200)
      assert.isTrue(stored?.response_body?.startsWith("enc1:test:"), stored?.response_body ?? "null")
      assert.notInclude(stored?.response_body ?? "", endpoint)
      const context = SecretContext.idempotencyResponse(tenant.tenantId, stored?.fingerprint ?? "", key)
      assert.strictEqual(
        yield* makeSecretBox(testEncryptionKeys).open(stored?.response_body ?? "", context),
        first.text
      )
      assert.isNull(stored?.response_ref)
      expectProblem(yield* patch(endpoint, "two"), 422)

      const missingKey = freshKey()
      const missing = () =>
        request("/v1/endpoints/ep_01HZZZZZZZZZZZZZZZZZZZZZZZ", {
          method: "PATCH",
          bearer: tenant.apiKey,
          idempotencyKey: missingKey,
          json: { description: "x" }
        })
      const notFound = yield* missing()
      expectProblem(notFound, 404)
      assert.isFalse(isReplay(notFound))
      const notFoundAgain = yield* missing()
      expectProblem(notFoundAgain, 404)
      assert.isTrue(isReplay(notFoundAgain))
      assert.strictEqual(notFoundAgain.text, notFound.text)
    })
  )

  it.effect("a request that fails to decode (400) releases its key: the corrected request then runs", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Idem decode")
      const key = freshKey()
      const invalid = yield* request("/v1/events", {
        bearer: tenant.apiKey,
        idempotencyKey: key,
        json: { type: "", data: {} }
      })
      expectProblem(invalid, 400)
      assert.isUndefined(yield* keyRow(tenant.tenantId, key))
      const valid = yield* request("/v1/events", {
        bearer: tenant.apiKey,
        idempotencyKey: key,
        json: { type: "a", data: {} }
      })
      assert.strictEqual(valid.status, 202, valid.text)
      assert.isFalse(isReplay(valid))
    })
  )

  it.effect("a 500 is not stored: the key is released, nothing is written, and a retry succeeds", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const tenant = yield* createTenant("Idem 500")
      yield* createEndpoint(tenant.apiKey)
      const key = freshKey()
      const body = { type: "order.created", data: { n: 1 } }
      yield* sql.unsafe(`
        CREATE OR REPLACE FUNCTION idem_test_fail() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'idempotency test: injected failure'; END $$`)
      const dropTrigger = Effect.gen(function* () {
        yield* sql.unsafe("DROP TRIGGER IF EXISTS idem_test_fail ON deliveries")
        yield* sql.unsafe("DROP FUNCTION IF EXISTS idem_test_fail()")
      }).pipe(Effect.orDie)
      yield* Effect.gen(function* () {
        yield* sql.unsafe(
          "CREATE TRIGGER idem_test_fail AFTER INSERT ON deliveries FOR EACH ROW EXECUTE FUNCTION idem_test_fail()"
        )
        const failed = yield* request("/v1/events", { bearer: tenant.apiKey, idempotencyKey: key, json: body })
        expectProblem(failed, 500)
        assert.isUndefined(yield* keyRow(tenant.tenantId, key), "released")
        assert.strictEqual(yield* countTenantRows("events", tenant.tenantId), 0)
      }).pipe(Effect.ensuring(dropTrigger))
      const retried = yield* request("/v1/events", { bearer: tenant.apiKey, idempotencyKey: key, json: body })
      assert.strictEqual(retried.status, 202, retried.text)
      assert.isFalse(isReplay(retried))
      assert.strictEqual(yield* countTenantRows("events", tenant.tenantId), 1)
    })
  )

  it.effect("the OpenAPI description publishes the expiry policy", () =>
    Effect.gen(function* () {
      const reply = yield* request("/openapi.json")
      const doc = JSON.parse(reply.text) as { readonly info: { readonly description: string } }
      assert.include(doc.info.description, "Idempotency-Key")
      assert.include(doc.info.description, "5 minutes")
    })
  )

  it.effect(
    "200 concurrent identical requests → exactly one event and one set of deliveries; the rest replay or 409",
    () =>
      Effect.gen(function* () {
        const { baseUrl } = yield* TestServer
        const tenant = yield* createTenant("Idem concurrent")
        yield* createEndpoint(tenant.apiKey)
        yield* createEndpoint(tenant.apiKey, ["order.*"])
        const key = freshKey()
        const replies = yield* Effect.promise(() =>
          Promise.all(
            Array.from({ length: 200 }, () =>
              callUrl(baseUrl, "/v1/events", {
                bearer: tenant.apiKey,
                idempotencyKey: key,
                json: { type: "order.created", data: { n: 1 } }
              })
            )
          )
        )
        const fresh = replies.filter((r) => r.status === 202 && !isReplay(r))
        const replays = replies.filter((r) => r.status === 202 && isReplay(r))
        const busy = replies.filter((r) => r.status === 409)
        assert.strictEqual(fresh.length, 1, JSON.stringify(replies.map((r) => r.status)))
        assert.strictEqual(fresh.length + replays.length + busy.length, 200)
        for (const replay of replays) assert.strictEqual(replay.text, fresh[0]?.text)
        for (const conflict of busy) expectProblem(conflict, 409)
        assert.strictEqual(yield* countTenantRows("events", tenant.tenantId), 1)
        assert.strictEqual(yield* countTenantRows("deliveries", tenant.tenantId), 2)
      })
  )

  it.effect("the purge deletes expired keys in batches, and only expired ones", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const scope = (yield* createTenant("Idem purge")).tenantId
      const fingerprint = "0".repeat(64)
      for (let i = 0; i < 5; i++) {
        yield* sql`
          INSERT INTO idempotency_keys (scope, key, fingerprint, method, path, state, lock_token, response_status,
                                        response_headers, response_body, completed_at, expires_at)
          VALUES (${scope}, ${`old-${i}`}, ${fingerprint}, 'POST', '/v1/events', 'completed', 't', 202, '{}', '{}',
                  now() - interval '10 minutes', now() - interval '1 second')`
      }
      // A crashed claim past its expiry but not past the lock timeout stays (its request might still commit).
      yield* sql`
        INSERT INTO idempotency_keys (scope, key, fingerprint, method, path, state, lock_token, locked_at, expires_at)
        VALUES (${scope}, 'live-claim', ${fingerprint}, 'POST', '/v1/events', 'in_progress', 't', now(),
                now() - interval '1 second')`
      yield* sql`
        INSERT INTO idempotency_keys (scope, key, fingerprint, method, path, state, lock_token, response_status,
                                      response_headers, response_body, completed_at, expires_at)
        VALUES (${scope}, 'fresh', ${fingerprint}, 'POST', '/v1/events', 'completed', 't', 202, '{}', '{}',
                now(), now() + interval '5 minutes')`
      const store = yield* storeWith({ ttl: Duration.minutes(5), lockTimeout: Duration.seconds(60) })
      const remaining = () =>
        sql<{ readonly key: string }>`SELECT key FROM idempotency_keys WHERE scope = ${scope} ORDER BY key`.pipe(
          Effect.map((rows) => rows.map((row) => row.key))
        )
      const purger = yield* purgeExpiredKeys({ every: Duration.millis(50), batchSize: 2 }).pipe(
        Effect.provideService(IdempotencyStore, store),
        Effect.forkChild
      )
      const left = yield* poll("the purger to leave two keys", remaining(), (keys) => keys.length <= 2, {
        intervalMs: 50
      })
      yield* Fiber.interrupt(purger)
      assert.deepStrictEqual(left, ["fresh", "live-claim"])
    })
  )

  it.effect(
    "one answer per key: a reclaim clears the previous answer, and each kind of completion clears the other",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const store = yield* storeWith({ ttl: Duration.minutes(5), lockTimeout: Duration.seconds(60) })
        const scope = (yield* createTenant("Idem one answer")).tenantId
        const key = freshKey()
        const events = { scope, key, fingerprint: "e".repeat(64), method: "POST", path: "/v1/events" }
        const endpoints = { ...events, fingerprint: "f".repeat(64), path: "/v1/endpoints" }
        const expire = sql`UPDATE idempotency_keys SET expires_at = now() WHERE scope = ${scope} AND key = ${key}`
        const answers = sql<{
          readonly state: string
          readonly response_status: number | null
          readonly stored: boolean
          readonly response_ref: unknown
        }>`
        SELECT state, response_status, response_ref,
               response_headers IS NOT NULL OR response_body IS NOT NULL AS stored
        FROM idempotency_keys WHERE scope = ${scope} AND key = ${key}`.pipe(Effect.map(([row]) => row))
        const completeWithRef = (claim: KeyClaim, ref: Schema.Json) => {
          const own = completionInWrite(sql, claim)
          return sql`
          WITH held AS MATERIALIZED (${own.held}),
               completed AS (${own.complete(sql`${JSON.stringify(ref)}::jsonb`)})
          SELECT 1 FROM held`
        }
        const claimed = (request: typeof events) =>
          Effect.flatMap(store.claim(request), (claim) =>
            claim._tag === "Claimed" ? Effect.succeed(claim.claim) : Effect.die(new Error(claim._tag))
          )

        // Completed by its handler (the publish): a ref, nothing stored.
        yield* completeWithRef(yield* claimed(events), { event: "evt_1" })
        assert.deepStrictEqual(yield* answers, {
          state: "completed",
          response_status: null,
          stored: false,
          response_ref: { event: "evt_1" }
        })
        // Expired, reclaimed by another request: nothing of the old answer is left while the new one runs.
        yield* expire
        const endpointsClaim = yield* claimed(endpoints)
        assert.deepStrictEqual(yield* answers, {
          state: "in_progress",
          response_status: null,
          stored: false,
          response_ref: null
        })
        // Completed with a stored response: that is its one answer, and what a retry gets.
        assert.isTrue(yield* store.complete(endpointsClaim, { status: 201, headers: {}, body: "{}" }))
        assert.deepStrictEqual(yield* answers, {
          state: "completed",
          response_status: 201,
          stored: true,
          response_ref: null
        })
        const replay = yield* store.claim(endpoints)
        assert.strictEqual(replay._tag, "Completed")
        // And back: reclaimed and completed with a ref, the stored response is gone.
        yield* expire
        yield* completeWithRef(yield* claimed(events), { event: "evt_2" })
        assert.deepStrictEqual(yield* answers, {
          state: "completed",
          response_status: null,
          stored: false,
          response_ref: { event: "evt_2" }
        })
        assert.strictEqual((yield* store.claim(events))._tag, "CompletedByHandler")
      }).pipe(Effect.orDie)
  )

  it.effect("the schema holds a completed key to exactly one answer (stored response or ref), a claim to none", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const scope = (yield* createTenant("Idem check")).tenantId
      const ref = JSON.stringify({ event: "evt_1" })
      const insert = (key: string, state: string, columns: { stored: boolean; ref: boolean; status?: boolean }) =>
        sql`
          INSERT INTO idempotency_keys (scope, key, fingerprint, method, path, state, lock_token, response_status,
                                        response_headers, response_body, response_ref, completed_at, expires_at)
          VALUES (${scope}, ${key}, ${"0".repeat(64)}, 'POST', '/v1/events', ${state}, 't',
                  ${columns.stored || columns.status === true ? 201 : null},
                  ${columns.stored ? "{}" : null}::jsonb, ${columns.stored ? "{}" : null},
                  ${columns.ref ? ref : null}::jsonb,
                  ${state === "completed" ? sql`now()` : sql`NULL`}, now() + interval '5 minutes')`.pipe(Effect.result)
      const refused = (
        key: string,
        state: string,
        columns: { stored: boolean; ref: boolean; status?: boolean },
        constraint: string
      ) =>
        Effect.gen(function* () {
          const result = yield* insert(key, state, columns)
          if (result._tag === "Success") return assert.fail(`${key}: accepted`)
          assert.strictEqual(result.failure.reason._tag, "ConstraintError", key)
          const cause = result.failure.reason.cause
          assert.include(cause instanceof Error ? cause.message : String(cause), constraint, key)
        })
      yield* refused("both", "completed", { stored: true, ref: true }, "idempotency_keys_one_answer")
      yield* refused("neither", "completed", { stored: false, ref: false }, "idempotency_keys_one_answer")
      yield* refused("claim-with-ref", "in_progress", { stored: false, ref: true }, "idempotency_keys_one_answer")
      yield* refused("claim-with-response", "in_progress", { stored: true, ref: false }, "idempotency_keys_one_answer")
      yield* refused("half-stored", "completed", { stored: false, ref: false, status: true }, "response_whole")
      for (const [key, state, columns] of [
        ["stored", "completed", { stored: true, ref: false }],
        ["ref", "completed", { stored: false, ref: true }],
        ["claim", "in_progress", { stored: false, ref: false }]
      ] as const) {
        assert.strictEqual((yield* insert(key, state, columns))._tag, "Success", key)
      }
    }).pipe(Effect.orDie)
  )

  it.effect("a ref is replayed only on a route that completes its own key: elsewhere a 500, and nothing runs", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const { baseUrl } = yield* TestServer
      const tenant = yield* createTenant("Idem ref elsewhere")
      const key = freshKey()
      const body = JSON.stringify({ url: `${baseUrl}/receiver`, eventTypes: [] })
      // What no code writes any more (corrupt data, or a route that changed between versions): a ref on a key of
      // POST /v1/endpoints, whose handler would not read it and would create the endpoint again.
      yield* sql`
        INSERT INTO idempotency_keys (scope, key, fingerprint, method, path, state, lock_token, response_ref,
                                      completed_at, expires_at)
        VALUES (${tenant.tenantId}, ${key}, ${fingerprintOf("POST", "/v1/endpoints", new TextEncoder().encode(body))},
                'POST', '/v1/endpoints', 'completed', 't', ${JSON.stringify({ event: "evt_1" })}::jsonb, now(),
                now() + interval '5 minutes')`
      const reply = yield* request("/v1/endpoints", { bearer: tenant.apiKey, idempotencyKey: key, raw: body })
      expectProblem(reply, 500)
      assert.isFalse(isReplay(reply))
      assert.strictEqual(yield* countTenantRows("endpoints", tenant.tenantId), 0)
    })
  )
})

// ---------------------------------------------------------------------------------------------------------------
// Configuration variants
// ---------------------------------------------------------------------------------------------------------------

layer(
  testServerWithSql({
    config: { idempotency: { ttl: Duration.seconds(1), lockTimeout: Duration.seconds(60), required: true } }
  }),
  { excludeTestServices: true }
)("IDEMPOTENCY_REQUIRED=true, IDEMPOTENCY_TTL=1 second", (it) => {
  it.effect("POST /v1/events without a key → 400 problem; other endpoints stay optional", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Idem required")
      const missing = yield* request("/v1/events", { bearer: tenant.apiKey, json: { type: "a", data: {} } })
      const problem = expectProblem(missing, 400)
      assert.include(String(problem.detail), "required")
      assert.strictEqual(yield* countTenantRows("events", tenant.tenantId), 0)
      const withKey = yield* request("/v1/events", {
        bearer: tenant.apiKey,
        idempotencyKey: freshKey(),
        json: { type: "a", data: {} }
      })
      assert.strictEqual(withKey.status, 202, withKey.text)
      yield* createEndpoint(tenant.apiKey)
    })
  )

  it.effect("a key expires IDEMPOTENCY_TTL after its response: then it names a new request", () =>
    Effect.gen(function* () {
      const { baseUrl } = yield* TestServer
      const tenant = yield* createTenant("Idem expiry")
      const key = freshKey()
      const first = yield* request("/v1/events", {
        bearer: tenant.apiKey,
        idempotencyKey: key,
        json: { type: "a", data: { n: 1 } }
      })
      assert.strictEqual(first.status, 202, first.text)
      assert.strictEqual((yield* keyRow(tenant.tenantId, key))?.ttl_seconds, 1)
      // Until it expires, another body is a mismatch; afterwards the key is free.
      const reused = yield* Effect.promise(() =>
        pollPromise(
          "the key to expire",
          () =>
            callUrl(baseUrl, "/v1/events", {
              bearer: tenant.apiKey,
              idempotencyKey: key,
              json: { type: "a", data: { n: 2 } }
            }),
          (reply) => reply.status !== 422
        )
      )
      assert.strictEqual(reused.status, 202, reused.text)
      assert.isFalse(isReplay(reused))
      assert.strictEqual(yield* countTenantRows("events", tenant.tenantId), 2)
    })
  )

  it.effect(
    "the issue's sequence: a key used on POST /v1/events, reused after its TTL on POST /v1/endpoints, then retried → the retry replays that endpoint, never creates a second",
    () =>
      Effect.gen(function* () {
        const { baseUrl } = yield* TestServer
        const tenant = yield* createTenant("Idem route change")
        const key = freshKey()
        const event = { type: "a", data: { n: 1 } }
        const published = yield* request("/v1/events", { bearer: tenant.apiKey, idempotencyKey: key, json: event })
        assert.strictEqual(published.status, 202, published.text)
        assert.isNotNull(
          (yield* keyRow(tenant.tenantId, key))?.response_ref,
          "the publish completed its key with a ref"
        )
        yield* untilExpired(tenant.tenantId, key)

        const endpoint = { url: `${baseUrl}/receiver`, eventTypes: [] }
        const created = yield* request("/v1/endpoints", { bearer: tenant.apiKey, idempotencyKey: key, json: endpoint })
        assert.strictEqual(created.status, 201, created.text)
        assert.isFalse(isReplay(created))
        const retried = yield* request("/v1/endpoints", { bearer: tenant.apiKey, idempotencyKey: key, json: endpoint })
        assert.strictEqual(retried.status, 201, retried.text)
        assert.isTrue(isReplay(retried))
        assert.strictEqual(retried.text, created.text, "the same endpoint, replayed")
        assert.strictEqual(yield* countTenantRows("endpoints", tenant.tenantId), 1, "the create ran once")
        // The key's answer is the endpoint's stored response now; the event's ref went with the reclaim.
        const row = yield* keyRow(tenant.tenantId, key)
        assert.deepStrictEqual([row?.state, row?.response_status, row?.response_ref], ["completed", 201, null])
        // And it belongs to that route: the event's request with this key is another request (422), not a replay.
        expectProblem(yield* request("/v1/events", { bearer: tenant.apiKey, idempotencyKey: key, json: event }), 422)
        assert.strictEqual(yield* countTenantRows("events", tenant.tenantId), 1)
      })
  )

  it.effect(
    "the other way round: a key whose stored response expired, reclaimed by POST /v1/events, keeps only the event's ref",
    () =>
      Effect.gen(function* () {
        const { baseUrl } = yield* TestServer
        const tenant = yield* createTenant("Idem route change back")
        const key = freshKey()
        const created = yield* request("/v1/endpoints", {
          bearer: tenant.apiKey,
          idempotencyKey: key,
          json: { url: `${baseUrl}/receiver`, eventTypes: [] }
        })
        assert.strictEqual(created.status, 201, created.text)
        yield* untilExpired(tenant.tenantId, key)

        const event = { type: "a", data: { n: 2 } }
        const published = yield* request("/v1/events", { bearer: tenant.apiKey, idempotencyKey: key, json: event })
        assert.strictEqual(published.status, 202, published.text)
        assert.isFalse(isReplay(published))
        const row = yield* keyRow(tenant.tenantId, key)
        const { event: stored } = JSON.parse(published.text) as { readonly event: { readonly id: string } }
        assert.deepStrictEqual(
          [row?.state, row?.response_status, row?.response_body, row?.response_ref],
          ["completed", null, null, { event: stored.id, deliveriesQueued: 1 }]
        )
        const retried = yield* request("/v1/events", { bearer: tenant.apiKey, idempotencyKey: key, json: event })
        assert.isTrue(isReplay(retried))
        assert.strictEqual(retried.text, published.text)
        assert.strictEqual(yield* countTenantRows("events", tenant.tenantId), 1)
      })
  )
})

// ---------------------------------------------------------------------------------------------------------------
// Several processes on one PostgreSQL database
// ---------------------------------------------------------------------------------------------------------------

const mode = inject("testDatabase")

/** Polls until a publish statement waits on a lock (LOCK TABLE events held by the test). */
const waitForLockedInsert = (sql: SqlClient.SqlClient) =>
  Effect.promise(() =>
    pollPromise(
      "the publish INSERT to wait on the lock",
      async () => {
        const [row] = await Effect.runPromise(
          sql<{ readonly waiting: number }>`
            SELECT count(*)::int AS waiting FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock'
              AND query LIKE '%INSERT INTO events%'`.pipe(Effect.orDie)
        )
        return row?.waiting ?? 0
      },
      (waiting) => waiting > 0,
      { timeoutMs: 15_000 }
    )
  )

describe.skipIf(mode.kind === "pglite")("across processes (needs a PostgreSQL server)", () => {
  layer(testServerWithSql(), { excludeTestServices: true })("two server processes", (it) => {
    it.effect(
      "a key that expires between the claim and the read of its holder is claimed anew, never replayed to another request",
      () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          const store = yield* storeWith({ ttl: Duration.millis(1500), lockTimeout: Duration.seconds(60) })
          const scope = (yield* createTenant("Idem expiry race")).tenantId
          const first = { scope, key: "race", fingerprint: "a".repeat(64), method: "POST", path: "/v1/events" }
          const claimed = yield* store.claim(first)
          if (claimed._tag !== "Claimed") return assert.fail(claimed._tag)
          assert.isTrue(yield* store.complete(claimed.claim, { status: 202, headers: {}, body: "{}" }))
          const poll = <A>(read: Effect.Effect<A | undefined, unknown>) =>
            Effect.gen(function* () {
              for (let i = 0; i < 500; i++) {
                const value = yield* read
                if (value !== undefined) return value
                yield* Effect.sleep("20 millis")
              }
              return assert.fail("timed out")
            })

          // Hold the row, so the second claim's statement starts before the key expires (its now() is fixed then)
          // and waits; let go once the key has expired: the claim finds nothing to take, the holder reads "expired".
          const locked = yield* Deferred.make<void>()
          const release = yield* Deferred.make<void>()
          const holder = yield* sql
            .withTransaction(
              Effect.gen(function* () {
                yield* sql`SELECT 1 FROM idempotency_keys WHERE scope = ${scope} AND key = 'race' FOR UPDATE`
                yield* Deferred.succeed(locked, undefined)
                yield* Deferred.await(release)
              })
            )
            .pipe(Effect.forkChild)
          yield* Deferred.await(locked)
          const second = yield* store.claim({ ...first, fingerprint: "b".repeat(64) }).pipe(Effect.forkChild)
          yield* poll(
            sql<{ readonly n: number }>`
              SELECT count(*)::int AS n FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock'
                AND query LIKE '%INSERT INTO idempotency_keys%'`.pipe(
              Effect.map(([row]) => ((row?.n ?? 0) > 0 ? true : undefined))
            )
          )
          yield* poll(
            sql<{ readonly expired: boolean }>`
              SELECT expires_at <= clock_timestamp() AS expired FROM idempotency_keys
              WHERE scope = ${scope} AND key = 'race'`.pipe(
              Effect.map(([row]) => (row?.expired === true ? true : undefined))
            )
          )
          yield* Deferred.succeed(release, undefined)
          yield* Fiber.join(holder)
          const outcome = yield* Fiber.join(second)
          assert.strictEqual(outcome._tag, "Claimed", "not a replay of the first request's response")
        }).pipe(Effect.orDie),
      30_000
    )

    it.effect(
      "200 identical requests spread over two processes → one event, one set of deliveries; the rest replay or 409",
      () =>
        Effect.gen(function* () {
          const shared = yield* SharedDatabase
          const tenant = yield* createTenant("Idem two processes")
          yield* createEndpoint(tenant.apiKey)
          yield* createEndpoint(tenant.apiKey, ["order.*"])
          const apps = yield* Effect.all([appProcess(shared.url), appProcess(shared.url)], { concurrency: 2 })
          const key = freshKey()
          const replies = yield* Effect.promise(() =>
            Promise.all(
              Array.from({ length: 200 }, (_, i) =>
                callUrl(apps[i % 2]?.ready ?? "", "/v1/events", {
                  bearer: tenant.apiKey,
                  idempotencyKey: key,
                  json: { type: "order.created", data: { n: 1 } }
                })
              )
            )
          )
          const fresh = replies.filter((r) => r.status === 202 && !isReplay(r))
          const others = replies.filter((r) => (r.status === 202 && isReplay(r)) || r.status === 409)
          assert.strictEqual(fresh.length, 1, JSON.stringify(replies.map((r) => r.status)))
          assert.strictEqual(others.length, 199)
          assert.strictEqual(yield* countTenantRows("events", tenant.tenantId), 1)
          assert.strictEqual(yield* countTenantRows("deliveries", tenant.tenantId), 2)
        }).pipe(Effect.scoped),
      60_000
    )

    it.effect(
      "a process killed (SIGKILL) mid-publish: its one statement commits whole, once; a retry elsewhere replays it",
      () =>
        Effect.gen(function* () {
          const shared = yield* SharedDatabase
          const sql = yield* SqlClient.SqlClient
          const tenant = yield* createTenant("Idem SIGKILL")
          yield* createEndpoint(tenant.apiKey)
          const [victim, survivor] = yield* Effect.all([appProcess(shared.url), appProcess(shared.url)], {
            concurrency: 2
          })
          const key = freshKey()
          const body = { type: "order.created", data: { n: 1 } }

          // Hold a lock the publish statement needs, so the victim's request stops there, after its claim committed.
          // Kill it there, then let go of the lock: the statement was sent whole (event, deliveries and the completed
          // key in one), so the database finishes it although its client is gone; or, had it not been sent, the
          // claim would wait out the lock timeout (the in-process suite shows that). Never half, never twice.
          yield* sql
            .withTransaction(
              Effect.gen(function* () {
                yield* sql`LOCK TABLE events IN EXCLUSIVE MODE`
                const inFlight = callUrl(victim?.ready ?? "", "/v1/events", {
                  bearer: tenant.apiKey,
                  idempotencyKey: key,
                  json: body
                }).catch((error: unknown) => error)
                yield* waitForLockedInsert(sql)
                const [claim] = yield* sql<{ readonly state: string }>`
                  SELECT state FROM idempotency_keys WHERE scope = ${tenant.tenantId} AND key = ${key}`
                assert.strictEqual(claim?.state, "in_progress")
                victim?.child.kill("SIGKILL")
                yield* Effect.promise(() => victim?.exited ?? Promise.resolve())
                yield* Effect.promise(() => inFlight)
              })
            )
            .pipe(Effect.orDie)

          const completed = yield* Effect.promise(() =>
            pollPromise(
              "the orphaned statement to commit",
              () =>
                Effect.runPromise(
                  keyRow(tenant.tenantId, key).pipe(Effect.provideService(SqlClient.SqlClient, sql), Effect.orDie)
                ),
              (row): row is NonNullable<typeof row> => row?.state === "completed",
              { timeoutMs: 15_000 }
            )
          )
          assert.strictEqual(yield* countTenantRows("events", tenant.tenantId), 1)
          assert.strictEqual(yield* countTenantRows("deliveries", tenant.tenantId), 1)
          const ref = completed.response_ref as { readonly event: string }
          for (let i = 0; i < 2; i++) {
            const retried = yield* Effect.promise(() =>
              callUrl(survivor?.ready ?? "", "/v1/events", { bearer: tenant.apiKey, idempotencyKey: key, json: body })
            )
            assert.strictEqual(retried.status, 202, retried.text)
            assert.isTrue(isReplay(retried))
            assert.strictEqual((JSON.parse(retried.text) as { event: { id: string } }).event.id, ref.event)
          }
          assert.strictEqual(yield* countTenantRows("events", tenant.tenantId), 1)
        }).pipe(Effect.scoped),
      60_000
    )

    it.effect("a publish whose claim was taken over while it waited → 409 problem, and it writes nothing", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const tenant = yield* createTenant("Idem claim lost")
        const key = freshKey()
        const locked = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const holder = yield* sql
          .withTransaction(
            Effect.gen(function* () {
              yield* sql`LOCK TABLE events IN EXCLUSIVE MODE`
              yield* Deferred.succeed(locked, undefined)
              yield* Deferred.await(release)
            })
          )
          .pipe(Effect.forkChild)
        yield* Deferred.await(locked)
        const publishing = yield* request("/v1/events", {
          bearer: tenant.apiKey,
          idempotencyKey: key,
          json: { type: "order.created", data: { n: 1 } }
        }).pipe(Effect.forkChild)
        yield* waitForLockedInsert(sql)
        // What a retry does once the claim is older than IDEMPOTENCY_LOCK_TIMEOUT: takes the key over (a new token).
        yield* sql`
          UPDATE idempotency_keys SET lock_token = 'the-retry', locked_at = now()
          WHERE scope = ${tenant.tenantId} AND key = ${key}`
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(holder)
        const lost = yield* Fiber.join(publishing)
        const problem = expectProblem(lost, 409)
        assert.include(String(problem.detail), "IDEMPOTENCY_LOCK_TIMEOUT")
        assert.strictEqual(yield* countTenantRows("events", tenant.tenantId), 0)
        const [row] = yield* sql<{ readonly state: string; readonly lock_token: string }>`
          SELECT state, lock_token FROM idempotency_keys WHERE scope = ${tenant.tenantId} AND key = ${key}`
        assert.deepStrictEqual(row, { state: "in_progress", lock_token: "the-retry" }, "the retry's claim, untouched")
      }).pipe(Effect.orDie)
    )
  })
})
