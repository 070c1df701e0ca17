import { assert, layer } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Layer, Option } from "effect"
import { SqlClient } from "effect/sql"
import { DeliveryWakeupsLive } from "../layers/DeliveryWakeupsLive.ts"
import { EndpointsLive } from "../layers/EndpointsLive.ts"
import { makeIdempotencyStore } from "../layers/IdempotencyStoreLive.ts"
import { SecretBoxLive } from "../layers/SecretBoxLive.ts"
import { Endpoints } from "../services/Endpoints.ts"
import { IdempotencyStore } from "../services/IdempotencyStore.ts"
import type { EndpointId, TenantId } from "../src/domain/Ids.ts"
import { appConfigTest } from "./support/appConfig.ts"
import { insertTenantWithEndpoints } from "./support/backlog.ts"
import { endpointCircuitsTest } from "./support/circuits.ts"
import { MetricsTest } from "./support/metricsRegistry.ts"
import { TestSqlLive } from "./support/testDatabase.ts"

/**
 * Repositories decode their rows (issue 18): what a table holds and the code does not expect fails at the read, as a
 * defect naming the column, instead of flowing on as a wrong type (a cast would have handed a number on as a string
 * of the endpoint's metadata, or as a header of a replayed response).
 */

const Repository = EndpointsLive.pipe(
  Layer.provide([endpointCircuitsTest().pipe(Layer.provide(MetricsTest)), SecretBoxLive, DeliveryWakeupsLive]),
  Layer.provide(appConfigTest()),
  Layer.provideMerge(TestSqlLive)
)

layer(Repository, { excludeTestServices: true })("endpoint rows", (it) => {
  it.effect("a row as the schema expects is read; one whose metadata holds a number is a defect naming it", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const endpoints = yield* Endpoints
      const [good, bad] = yield* insertTenantWithEndpoints(sql, { name: "Rows", endpoints: 2 })
      if (good === undefined || bad === undefined) return assert.fail("endpoints not created")
      const tenantId = good.tenant_id as TenantId

      const read = yield* endpoints.get(tenantId, good.endpoint_id as EndpointId)
      assert.isTrue(Option.isSome(read))
      if (Option.isSome(read)) assert.deepStrictEqual(read.value.metadata, {})

      // What a faulty migration or a hand edit could leave: metadata values must be strings.
      yield* sql`UPDATE endpoints SET metadata = '{"plan": 3}'::jsonb WHERE id = ${bad.endpoint_id}`
      const exit = yield* Effect.exit(endpoints.get(tenantId, bad.endpoint_id as EndpointId))
      assert.isTrue(Exit.isFailure(exit) && Cause.hasDies(exit.cause), "a defect, not a typed failure or a value")
      if (Exit.isFailure(exit)) assert.include(Cause.pretty(exit.cause), "metadata")
    })
  )
})

const Store = Layer.effect(
  IdempotencyStore,
  makeIdempotencyStore({ ttl: Duration.minutes(5), lockTimeout: Duration.seconds(60) })
).pipe(Layer.provide(SecretBoxLive), Layer.provide(appConfigTest()), Layer.provideMerge(TestSqlLive))

layer(Store, { excludeTestServices: true })("idempotency key rows", (it) => {
  it.effect("a stored answer whose headers are not an object of strings is a defect naming the column", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const store = yield* IdempotencyStore
      const request = {
        scope: "admin",
        key: `rows-${Date.now()}`,
        fingerprint: "c".repeat(64),
        method: "POST",
        path: "/v1/endpoints"
      }
      const claimed = yield* store.claim(request)
      if (claimed._tag !== "Claimed") return assert.fail(claimed._tag)
      assert.isTrue(yield* store.complete(claimed.claim, { status: 201, headers: { "x-a": "1" }, body: "{}" }))
      const replay = yield* store.claim(request)
      assert.strictEqual(replay._tag, "Completed")

      yield* sql`UPDATE idempotency_keys SET response_headers = '{"x-a": 1}'::jsonb
                 WHERE scope = ${request.scope} AND key = ${request.key}`
      const exit = yield* Effect.exit(store.claim(request))
      assert.isTrue(Exit.isFailure(exit) && Cause.hasDies(exit.cause), "a defect, not a typed failure or a value")
      if (Exit.isFailure(exit)) assert.include(Cause.pretty(exit.cause), "response_headers")
    })
  )
})
