import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { claimDue, claimDueStatement } from "../layers/DeliveryClaim.ts"
import {
  type BacklogState,
  type BacklogEndpoint as Endpoint,
  insertDelivery,
  insertEndpointBacklog,
  insertTenantWithEndpoints
} from "./support/backlog.ts"
import { explainAnalyze, pagesOf, pagesReadOf } from "./support/queryPlan.ts"
import { TestSqlLive } from "./support/testDatabase.ts"

/**
 * The claim's cost does not follow the backlogs beside it (issue 17). A hot tenant's three endpoints: one whose four
 * oldest due deliveries another worker is sending (its endpoint limit), one whose deliveries all wait for a retry an
 * hour ahead and that has just been published one new delivery, and one paused (its circuit open) with a due backlog;
 * and a quiet tenant's one new delivery. The claim (EXPLAIN ANALYZE of the very statement the worker runs, on this
 * file's own database, no worker running) takes the two new deliveries and the oldest four nobody holds, and reads
 * about as many pages with 200,000 rows in those backlogs as with 1,000: each read of an endpoint stops at its last
 * due row. Before, the read of the endpoint with retries scheduled went on through all of them (this test on it: 5,664
 * pages read with 200,000 rows, 103 with 1,000); `npm run bench:claim-cost` measures it up to a million rows.
 */

layer(TestSqlLive, { excludeTestServices: true })("the claim beside long backlogs", (it) => {
  it.effect(
    "leases held elsewhere, retries scheduled, a paused endpoint; 1,000 then 200,000 rows: the claim takes what is free, pages read flat",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const [held, retrying, paused] = yield* insertTenantWithEndpoints(sql, { name: "Hot", endpoints: 3 })
        const [quiet] = yield* insertTenantWithEndpoints(sql, { name: "Quiet" })
        if (held === undefined || retrying === undefined || paused === undefined || quiet === undefined) {
          return assert.fail("endpoints not created")
        }

        /** Grows the three backlogs to `rows` each. */
        let rowsEach = 0
        const growBacklogs = (rows: number) =>
          Effect.gen(function* () {
            const more = rows - rowsEach
            rowsEach = rows
            const backlog = (endpoint: Endpoint, state: BacklogState) =>
              insertEndpointBacklog(sql, {
                tenantId: endpoint.tenant_id,
                endpointId: endpoint.endpoint_id,
                rows: more,
                state
              })
            yield* backlog(held, "due")
            yield* backlog(retrying, "scheduled")
            yield* backlog(paused, "due")
            yield* sql`VACUUM ANALYZE deliveries`
          })
        /** One delivery published just now to `endpoint`. */
        const newDelivery = (endpoint: Endpoint) =>
          Effect.map(insertDelivery(sql, endpoint, { type: "new.item" }), (rows) => rows.map((row) => row.id))

        /** A claim with nothing in flight here: pages read, rows leased (then marked succeeded), what it should take. */
        const claimOnce = Effect.gen(function* () {
          const oldestFree = yield* sql<{ readonly id: string }>`
            SELECT id FROM deliveries WHERE endpoint_id = ${held.endpoint_id} AND status = 'pending'
              AND locked_until IS NULL ORDER BY next_attempt_at LIMIT 4`
          const expected = [
            ...(yield* newDelivery(quiet)),
            ...(yield* newDelivery(retrying)),
            ...oldestFree.map((row) => row.id)
          ].sort()
          const plan = yield* explainAnalyze(
            sql,
            claimDueStatement(sql, {
              limit: 8,
              busyEndpoints: new Map(),
              busyTenants: new Map(),
              endpointConcurrency: 4,
              tenantConcurrency: 16,
              leaseSeconds: 60,
              workerId: "wkr_claimcost"
            })
          )
          const taken = yield* sql<{ readonly id: string }>`
            UPDATE deliveries SET status = 'succeeded', locked_until = NULL, locked_by = NULL
            WHERE locked_by = 'wkr_claimcost' AND status = 'pending' RETURNING id`
          return {
            pages: pagesReadOf(plan),
            written: pagesOf(plan) - pagesReadOf(plan),
            expected,
            taken: taken.map((row) => row.id).sort()
          }
        })

        yield* growBacklogs(333)
        // Another worker sends the held endpoint's four oldest; the paused endpoint waits for its circuit.
        yield* sql`
          UPDATE deliveries SET locked_until = now() + interval '1 hour', locked_by = 'wkr_elsewhere'
          WHERE id IN (SELECT id FROM deliveries WHERE endpoint_id = ${held.endpoint_id} ORDER BY next_attempt_at LIMIT 4)`
        yield* sql`UPDATE endpoints SET paused_until = now() + interval '1 hour' WHERE id = ${paused.endpoint_id}`
        const small = yield* claimOnce
        assert.deepStrictEqual(small.taken, small.expected, "the new deliveries and the four oldest nobody holds")

        yield* growBacklogs(66_667)
        const large = yield* claimOnce
        assert.deepStrictEqual(large.taken, large.expected, "the new deliveries and the four oldest nobody holds")
        console.log(
          `claim beside three backlogs: ${small.pages} pages read (1,000 rows), ${large.pages} (200,000); ` +
            `${small.written} and ${large.written} written`
        )
        // Each index is a level deeper with 200,000 rows: a page more for each of the claim's 25 or so probes (and the
        // planner may look events up by index rather than read their few pages). Nothing in proportion to the backlogs.
        // (The pages the UPDATE writes are left out: whether a lease stays on its page is not the claim's doing.)
        assert.isAtMost(
          large.pages,
          small.pages + 50,
          `pages read: ${small.pages} with 1,000, ${large.pages} with 200,000`
        )
      }),
    { timeout: 120_000 }
  )

  it.effect(
    "a lease that expired is taken back, oldest due first beside the free ones; a lease still held is not",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const [mixed, expiredOnly] = yield* insertTenantWithEndpoints(sql, { name: "Leases", endpoints: 2 })
        if (mixed === undefined || expiredOnly === undefined) return assert.fail("endpoints not created")
        /** A delivery due `minutesAgo` minutes ago, leased until `leasedFor` minutes from now (negative: expired). */
        const delivery = (endpoint: Endpoint, minutesAgo: number, leasedFor: number | null) =>
          Effect.map(
            insertDelivery(sql, endpoint, {
              type: "lease.item",
              dueMinutesAgo: minutesAgo,
              leasedForMinutes: leasedFor
            }),
            ([row]) => row?.id ?? ""
          )
        // Oldest first: held, expired, free, expired (earlier), held, free, free.
        const held1 = yield* delivery(mixed, 10, 60)
        const expired1 = yield* delivery(mixed, 9, -1)
        const free1 = yield* delivery(mixed, 8, null)
        const expired2 = yield* delivery(mixed, 7, -2)
        const held2 = yield* delivery(mixed, 6, 60)
        const free2 = yield* delivery(mixed, 5, null)
        yield* delivery(mixed, 4, null)
        const alone = yield* delivery(expiredOnly, 1, -1)

        // Room for every endpoint with something due: the other test's backlogs may be here too.
        const claimed = yield* claimDue(sql, {
          limit: 64,
          busyEndpoints: new Map(),
          busyTenants: new Map(),
          endpointConcurrency: 4,
          tenantConcurrency: 16,
          leaseSeconds: 60,
          workerId: "wkr_leasetest"
        })
        // The endpoint's 4 oldest due deliveries nobody holds, and the other endpoint's expired one.
        const ours = new Set([mixed.endpoint_id, expiredOnly.endpoint_id])
        assert.deepStrictEqual(
          claimed
            .filter((row) => ours.has(row.endpoint_id))
            .map((row) => row.id)
            .sort(),
          [expired1, free1, expired2, free2, alone].sort()
        )
        const held = yield* sql<{ readonly id: string }>`
        SELECT id FROM deliveries WHERE locked_by = 'wkr_elsewhere' AND endpoint_id = ${mixed.endpoint_id} ORDER BY id`
        assert.deepStrictEqual(
          held.map((row) => row.id),
          [held1, held2].sort(),
          "leases still held are left to their worker"
        )
        // Nothing of this test left for another claim to take.
        yield* sql`
        UPDATE deliveries SET status = 'succeeded', locked_until = NULL, locked_by = NULL
        WHERE endpoint_id IN (${mixed.endpoint_id}, ${expiredOnly.endpoint_id})`
      })
  )
})
