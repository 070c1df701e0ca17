import { assert, layer } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Option } from "effect"
import { SqlClient } from "effect/sql"
import { EndpointsLive } from "../layers/EndpointsLive.ts"
import { SecretBoxLive } from "../layers/SecretBoxLive.ts"
import { Endpoints } from "../services/Endpoints.ts"
import type { EndpointId, TenantId } from "../src/domain/Ids.ts"
import { appConfigTest } from "./support/appConfig.ts"
import { insertTenantWithEndpoints } from "./support/backlog.ts"
import { endpointCircuitsTest } from "./support/circuits.ts"
import { MetricsTest } from "./support/metricsRegistry.ts"
import { TestSqlLive } from "./support/testDatabase.ts"

/**
 * The endpoints repository decodes its rows (issue 18): what the table holds and the code does not expect fails at
 * the read, as a defect naming the column, instead of flowing on as a wrong type (a cast would have handed a number
 * on as a string of the endpoint's metadata).
 */

const Repository = EndpointsLive.pipe(
  Layer.provide([endpointCircuitsTest().pipe(Layer.provide(MetricsTest)), SecretBoxLive]),
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
