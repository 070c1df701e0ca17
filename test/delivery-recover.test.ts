import { assert, layer } from "@effect/vitest"
import { Effect, Layer, Option, Ref, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { DeliveriesLive, recoverBatchSize } from "../layers/DeliveriesLive.ts"
import { DeliveryWakeupsLive } from "../layers/DeliveryWakeupsLive.ts"
import { Deliveries } from "../services/Deliveries.ts"
import { DeliveryWakeups } from "../services/DeliveryWakeups.ts"
import { EndpointId, TenantId } from "../src/domain/Ids.ts"
import { appConfigTest } from "./support/appConfig.ts"
import { insertTenantWithEndpoints } from "./support/backlog.ts"
import { TestSqlLive } from "./support/testDatabase.ts"

/**
 * `recover` after a long outage: an endpoint's failed deliveries re-queued in batches of `recoverBatchSize`, each its
 * own statement, committed (and waking the worker) by itself, so no statement holds more than a batch of rows however
 * many failed. Run against the service on this file's database, without a worker: what it queued stays queued.
 */

const DeliveriesTest = DeliveriesLive.pipe(
  Layer.provideMerge(DeliveryWakeupsLive),
  Layer.provide(appConfigTest()),
  Layer.provideMerge(TestSqlLive)
)

layer(DeliveriesTest, { excludeTestServices: true })("recover", (it) => {
  it.effect(
    "two and a half batches of failed deliveries: all queued, one wake-up per batch; older ones and other statuses left",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const deliveries = yield* Deliveries
        const wakeups = yield* DeliveryWakeups
        const [endpoint] = yield* insertTenantWithEndpoints(sql, { name: "Outage", path: "outage" })
        if (endpoint === undefined) return assert.fail("endpoint not created")
        const tenantId = Schema.decodeUnknownSync(TenantId)(endpoint.tenant_id)
        const endpointId = Schema.decodeUnknownSync(EndpointId)(endpoint.endpoint_id)

        const failed = Math.floor(recoverBatchSize * 2.5)
        const since = new Date(Date.now() - 60 * 60 * 1000)
        // Failed since the outage began; then, to be left as they are: failed before it, and other statuses.
        const insert = (rows: number, status: string, createdAt: string) => sql`
          WITH ev AS (
            INSERT INTO events (id, tenant_id, type, data, occurred_at)
            SELECT 'evt_' || codex_ulid(), ${tenantId}, 'outage.item', '{}', now() FROM generate_series(1, ${rows}::int)
            RETURNING id
          )
          INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, status, attempt_count, created_at)
          SELECT 'dlv_' || codex_ulid(), ${tenantId}, ev.id, ${endpointId}, ${status}, 8, ${sql.unsafe(createdAt)}
          FROM ev`
        yield* insert(failed, "failed", "now()")
        yield* insert(3, "failed", "now() - interval '1 day'")
        yield* insert(3, "succeeded", "now()")
        yield* insert(3, "cancelled", "now()")

        const wakes = yield* Ref.make(0)
        yield* wakeups.subscribe(Ref.update(wakes, (n) => n + 1))
        const queued = yield* deliveries.recover(tenantId, endpointId, since)

        assert.deepStrictEqual(queued, Option.some(failed))
        assert.strictEqual(yield* Ref.get(wakes), 3, "each batch woke the worker when it committed")
        const statuses = yield* sql<{ readonly status: string; readonly old: boolean; readonly rows: number }>`
          SELECT status, created_at < ${since} AS old, count(*)::int AS rows FROM deliveries
          WHERE endpoint_id = ${endpointId} GROUP BY 1, 2 ORDER BY 1, 2`
        assert.deepStrictEqual(statuses, [
          { status: "cancelled", old: false, rows: 3 },
          { status: "failed", old: true, rows: 3 },
          { status: "pending", old: false, rows: failed },
          { status: "succeeded", old: false, rows: 3 }
        ])

        // Nothing failed is left since then: a second recover queues nothing and wakes no one.
        assert.deepStrictEqual(yield* deliveries.recover(tenantId, endpointId, since), Option.some(0))
        assert.strictEqual(yield* Ref.get(wakes), 3)
      }),
    { timeout: 60_000 }
  )
})
