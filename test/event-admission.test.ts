import { assert, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { ApiKeyAuthLive } from "../layers/ApiKeyAuthLive.ts"
import { EventTypesLive } from "../layers/EventTypesLive.ts"
import { ApiKeyAuth } from "../services/ApiKeyAuth.ts"
import { EventTypes } from "../services/EventTypes.ts"
import { newId, type TenantId } from "../src/domain/Ids.ts"
import { makeEventAdmission } from "../src/http/EventAdmission.ts"
import { appConfigTest } from "./support/appConfig.ts"
import { TestSqlLive } from "./support/testDatabase.ts"

/**
 * The publish admission's validator cache against the real catalog on the real database, with a publish of a newer
 * version of the type landing while another publish's lookup is in flight: the cache then holds the newer version,
 * and the publish in flight must use the validator of the version its lookup answered (which left the schema text
 * out because it had it), not fail because the cache moved on.
 */

const Catalog = EventTypesLive.pipe(
  Layer.provideMerge(ApiKeyAuthLive),
  Layer.provide(appConfigTest()),
  Layer.provideMerge(TestSqlLive)
)

layer(Catalog)("event admission", (it) => {
  it.effect("admissions are cached: another replica's change applies once its notification arrives", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const catalog = yield* EventTypes
      const auth = yield* ApiKeyAuth
      const tenantId = (yield* newId("ten")) as TenantId
      yield* sql`INSERT INTO tenants (id, name) VALUES (${tenantId}, 'Admission cache')`
      yield* catalog.create(tenantId, "user.created", {})
      const first = yield* catalog.admission(tenantId, "user.created", undefined)
      assert.strictEqual(first.entry?.archived, false)
      // Archived by another replica (its own statement; this process is not told): still the cached answer...
      yield* sql`UPDATE event_types SET archived_at = now() WHERE tenant_id = ${tenantId} AND name = 'user.created'`
      assert.strictEqual((yield* catalog.admission(tenantId, "user.created", undefined)).entry?.archived, false)
      // ...until the NOTIFY it sends arrives (what the API keys' listener does with it): then the database is asked.
      yield* auth.invalidateTenant(tenantId)
      assert.strictEqual((yield* catalog.admission(tenantId, "user.created", undefined)).entry?.archived, true)
      // This process's own changes apply at once.
      yield* catalog.update(tenantId, "user.created", { archived: false })
      assert.strictEqual((yield* catalog.admission(tenantId, "user.created", undefined)).entry?.archived, false)
      yield* catalog.delete(tenantId, "user.created")
      assert.isUndefined((yield* catalog.admission(tenantId, "user.created", undefined)).entry)
    })
  )

  it.effect("a lookup in flight while the cache moves to a newer version still validates with its own version", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const catalog = yield* EventTypes
      const tenantId = (yield* newId("ten")) as TenantId
      yield* sql`INSERT INTO tenants (id, name) VALUES (${tenantId}, 'Admission race')`
      yield* catalog.create(tenantId, "order.created", { schema: { type: "object", required: ["v1"] } })

      let interleave: Effect.Effect<void> = Effect.void
      const admit = makeEventAdmission({
        ...catalog,
        admission: (tenant, type, known) =>
          Effect.tap(catalog.admission(tenant, type, known), () => {
            const during = interleave
            interleave = Effect.void
            return during
          })
      })
      // The first publish caches version 1's validator.
      yield* admit(tenantId, "order.created", { v1: true })
      // The next one's lookup answers version 1 (no text: it is cached); before it validates, the type changes and
      // another publish caches version 2.
      interleave = Effect.gen(function* () {
        yield* catalog.update(tenantId, "order.created", { schema: { type: "object", required: ["v2"] } })
        yield* admit(tenantId, "order.created", { v2: true })
      }).pipe(Effect.orDie)
      yield* admit(tenantId, "order.created", { v1: true })
      // Version 2 applies from now on.
      const refused = yield* Effect.flip(admit(tenantId, "order.created", { v1: true }))
      assert.deepStrictEqual(
        refused.errors?.map((e) => e.pointer),
        ["/data/v2"]
      )
    })
  )
})
