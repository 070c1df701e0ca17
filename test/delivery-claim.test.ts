import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { claimDue } from "../layers/DeliveryClaim.ts"
import { TestSqlLive } from "./support/testDatabase.ts"

/**
 * The claim's cost does not follow a backlog (issue 17): one endpoint at its in-flight limit with a long due backlog
 * of its own, another tenant's endpoint with one new delivery. The claim (EXPLAIN ANALYZE of the very statement the
 * worker runs, on this file's own database, no worker running) takes the other tenant's delivery, and reads about as
 * many pages with 50,000 due rows in the backlog as with 1,000. The time-ordered scan it replaced read the whole
 * backlog ahead of that delivery, row by row, to skip it.
 */

interface PlanRoot {
  readonly Plan: { readonly "Shared Hit Blocks": number; readonly "Shared Read Blocks": number }
}

layer(TestSqlLive, { excludeTestServices: true })("the claim with a long backlog", (it) => {
  it.effect(
    "one endpoint at its limit with 1,000 then 50,000 due rows: the claim takes the other tenant's delivery, pages read flat",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const [hot] = yield* sql<{ readonly tenant_id: string; readonly endpoint_id: string }>`
          WITH t AS (INSERT INTO tenants (id, name) VALUES ('ten_' || codex_ulid(), 'Backlog') RETURNING id)
          INSERT INTO endpoints (id, tenant_id, url, secret)
          SELECT 'ep_' || codex_ulid(), t.id, 'http://127.0.0.1:9/hot', 's' FROM t
          RETURNING tenant_id, id AS endpoint_id`
        const [quiet] = yield* sql<{ readonly tenant_id: string; readonly endpoint_id: string }>`
          WITH t AS (INSERT INTO tenants (id, name) VALUES ('ten_' || codex_ulid(), 'Quiet') RETURNING id)
          INSERT INTO endpoints (id, tenant_id, url, secret)
          SELECT 'ep_' || codex_ulid(), t.id, 'http://127.0.0.1:9/quiet', 's' FROM t
          RETURNING tenant_id, id AS endpoint_id`
        if (hot === undefined || quiet === undefined) return assert.fail("endpoints not created")

        const addBacklog = (rows: number) => sql`
          WITH ev AS (
            INSERT INTO events (id, tenant_id, type, data, occurred_at)
            SELECT 'evt_' || codex_ulid(), ${hot.tenant_id}, 'backlog.item', '{}', now()
            FROM generate_series(1, ${rows})
            RETURNING id
          )
          INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, next_attempt_at)
          SELECT 'dlv_' || codex_ulid(), ${hot.tenant_id}, ev.id, ${hot.endpoint_id}, now() - interval '1 hour'
          FROM ev`
        const addQuiet = sql`
          WITH ev AS (
            INSERT INTO events (id, tenant_id, type, data, occurred_at)
            VALUES ('evt_' || codex_ulid(), ${quiet.tenant_id}, 'quiet.item', '{}', now())
            RETURNING id
          )
          INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id)
          SELECT 'dlv_' || codex_ulid(), ${quiet.tenant_id}, ev.id, ${quiet.endpoint_id} FROM ev
          RETURNING id`

        /** The worker's claim, the hot endpoint (and its tenant) with 4 sends in flight: pages read, rows taken. */
        const claimOnce = Effect.gen(function* () {
          const statement = claimDue(sql, {
            limit: 8,
            busyEndpoints: new Map([[hot.endpoint_id, 4]]),
            busyTenants: new Map([[hot.tenant_id, 4]]),
            endpointConcurrency: 4,
            tenantConcurrency: 16,
            leaseSeconds: 60,
            workerId: "wkr_claimtest"
          })
          const [text, params] = statement.compile()
          const [explained] = yield* sql.unsafe<{ readonly "QUERY PLAN": unknown }>(
            `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${text}`,
            params
          )
          const raw = explained?.["QUERY PLAN"]
          const plan: unknown = typeof raw === "string" ? JSON.parse(raw) : raw
          const root = (Array.isArray(plan) ? plan[0] : undefined) as PlanRoot | undefined
          const pages = (root?.Plan["Shared Hit Blocks"] ?? 0) + (root?.Plan["Shared Read Blocks"] ?? 0)
          const leased = yield* sql<{ readonly id: string }>`
            SELECT id FROM deliveries WHERE locked_by = 'wkr_claimtest' AND status = 'pending'`
          yield* sql`UPDATE deliveries SET status = 'succeeded', locked_by = NULL WHERE locked_by = 'wkr_claimtest'`
          return { pages, leased: leased.map((row) => row.id) }
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
      }),
    { timeout: 120_000 }
  )
})
