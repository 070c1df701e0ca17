import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { claimDueStatement } from "../layers/DeliveryClaim.ts"
import { insertDelivery, insertDueBacklog, insertTenantWithEndpoints } from "./support/backlog.ts"
import { explainAnalyze, lockedRows, pagesOf } from "./support/queryPlan.ts"
import { TestSqlLive } from "./support/testDatabase.ts"

/**
 * The claim's cost does not follow a backlog (issue 17): one endpoint at its in-flight limit with a long due backlog
 * of its own, another tenant's endpoint with one new delivery. The claim (EXPLAIN ANALYZE of the very statement the
 * worker runs, on this file's own database, no worker running) takes the other tenant's delivery, and reads about as
 * many pages with 50,000 due rows in the backlog as with 1,000. The time-ordered scan it replaced read the whole
 * backlog ahead of that delivery, row by row, to skip it (this test on it: 88 pages with 1,000, 1,286 with 50,000). And
 * a fan-out to many endpoints locks candidates from only as many endpoints as there are free slots.
 */

layer(TestSqlLive, { excludeTestServices: true })("the claim with a long backlog", (it) => {
  it.effect(
    "one endpoint at its limit with 1,000 then 50,000 due rows: the other tenant's delivery is taken, pages read flat; a 300-endpoint fan-out locks at most limit x 4 rows",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const [hot] = yield* insertTenantWithEndpoints(sql, { name: "Backlog", path: "hot" })
        const [quiet] = yield* insertTenantWithEndpoints(sql, { name: "Quiet", path: "quiet" })
        if (hot === undefined || quiet === undefined) return assert.fail("endpoints not created")

        const addBacklog = (rows: number) =>
          insertDueBacklog(sql, { tenantId: hot.tenant_id, events: rows, endpointId: hot.endpoint_id })
        const addQuiet = insertDelivery(sql, quiet, { type: "quiet.item" })

        /** The worker's claim, the hot endpoint (and its tenant) with 4 sends in flight: pages read, rows taken. */
        const claimOnce = Effect.gen(function* () {
          const plan = yield* explainAnalyze(
            sql,
            claimDueStatement(sql, {
              limit: 8,
              busyEndpoints: new Map([[hot.endpoint_id, 4]]),
              busyTenants: new Map([[hot.tenant_id, 4]]),
              endpointConcurrency: 4,
              tenantConcurrency: 16,
              leaseSeconds: 60,
              workerId: "wkr_claimtest"
            })
          )
          const leased = yield* sql<{ readonly id: string }>`
            SELECT id FROM deliveries WHERE locked_by = 'wkr_claimtest' AND status = 'pending'`
          yield* sql`UPDATE deliveries SET status = 'succeeded', locked_by = NULL WHERE locked_by = 'wkr_claimtest'`
          return { pages: pagesOf(plan), locked: lockedRows(plan), leased: leased.map((row) => row.id) }
        })

        yield* addBacklog(1_000)
        yield* sql`VACUUM ANALYZE deliveries`
        const [small] = yield* addQuiet
        const before = yield* claimOnce
        assert.deepStrictEqual(before.leased, [small?.id], "the quiet tenant's delivery, none of the hot endpoint's")

        yield* addBacklog(49_000)
        yield* sql`VACUUM ANALYZE deliveries`
        const [large] = yield* addQuiet
        const after = yield* claimOnce
        assert.deepStrictEqual(after.leased, [large?.id], "the quiet tenant's delivery, none of the hot endpoint's")
        console.log(
          `claim with one endpoint at its limit: ${before.pages} pages (1,000 due), ${after.pages} (50,000 due)`
        )
        // A few pages either way (index depth may grow by one level): nothing proportional to the backlog.
        assert.isAtMost(
          after.pages,
          before.pages + 20,
          `pages read: ${before.pages} with 1,000, ${after.pages} with 50,000`
        )
        assert.isBelow(after.pages, 200, `pages read with 50,000 due: ${after.pages}`)

        // A fan-out: one event to each of a third tenant's 300 endpoints. The claim fills its 8 slots from 8 of them
        // and locks at most 8 x 4 candidate rows, not a few from each of the 300.
        yield* sql`
          WITH t AS (INSERT INTO tenants (id, name) VALUES ('ten_' || codex_ulid(), 'Fan-out') RETURNING id),
          ep AS (
            INSERT INTO endpoints (id, tenant_id, url, secret)
            SELECT 'ep_' || codex_ulid(), t.id, 'http://127.0.0.1:9/fan-' || n, 's' FROM t, generate_series(1, 300) n
            RETURNING id, tenant_id
          ),
          ev AS (
            INSERT INTO events (id, tenant_id, type, data, occurred_at)
            SELECT 'evt_' || codex_ulid(), t.id, 'fan.out', '{}', now() FROM t
            RETURNING id
          )
          INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id)
          SELECT 'dlv_' || codex_ulid(), ep.tenant_id, ev.id, ep.id FROM ep, ev`
        yield* sql`ANALYZE deliveries`
        const fanOut = yield* claimOnce
        assert.lengthOf(fanOut.leased, 8, "every free slot filled")
        console.log(`claim over a 300-endpoint fan-out: ${fanOut.locked} rows locked, ${fanOut.pages} pages`)
        assert.isAtMost(fanOut.locked, 8 * 4, `rows locked by the claim: ${fanOut.locked}`)
      }),
    { timeout: 120_000 }
  )
})
