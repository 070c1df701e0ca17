/**
 * The claim's cost against one endpoint's backlog (issue 17): the worker's claim (`claimDue`, the very statement it
 * runs) on PostgreSQL, one hot endpoint with 0, 10,000, 100,000 and 1,000,000 pending deliveries beside quiet
 * endpoints of other tenants with one due delivery each. The hot endpoint's backlog in each state it meets:
 *
 *   due                              all due, nobody holds any: the claim takes the quiet deliveries and the hot
 *                                    endpoint's share (DELIVERY_ENDPOINT_CONCURRENCY)
 *   at its limit                     the same rows, this worker already sending DELIVERY_ENDPOINT_CONCURRENCY of them
 *   another worker at its limit      the same rows, the oldest DELIVERY_ENDPOINT_CONCURRENCY leased by another worker
 *   circuit open                     the same rows, the endpoint paused (`paused_until`) while its circuit is open
 *   retries scheduled                all waiting for a retry an hour ahead (or deferred there by a previous release)
 *   retries scheduled, one new       the same, and one delivery published since, due now
 *   all leased elsewhere             all due and all leased by other workers: more than they may ever hold (each at
 *                                    most DELIVERY_ENDPOINT_CONCURRENCY of an endpoint); the claim passes over leases
 *                                    one by one, so this one grows with the backlog (see DeliveryClaim.ts)
 *
 * Each claim runs in a transaction that is rolled back, so every run sees the same rows. Per state and backlog: the
 * median time of the statement over `runs` runs after two warm-up runs, the shared buffers (hit, read) its EXPLAIN
 * (ANALYZE, BUFFERS) reports, and what a claim took. A database of its own, made and migrated here, dropped after.
 */
import { PgClient } from "@effect/sql-pg"
import { Data, Effect, Layer, Option, Redacted, Ref } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import { type ClaimedRow, type ClaimRequest, claimDue, claimDueStatement } from "../../layers/DeliveryClaim.ts"
import { runMigrations } from "../../layers/Migrations.ts"
import { dropScratchDatabase, median, scratchDatabase } from "../lib.ts"

export type BacklogState =
  | "due"
  | "at its limit"
  | "another worker at its limit"
  | "circuit open"
  | "retries scheduled"
  | "retries scheduled, one new"
  | "all leased elsewhere"

export interface ClaimCost {
  readonly state: BacklogState
  /** Pending deliveries of the hot endpoint (the new delivery of "retries scheduled, one new" not counted). */
  readonly backlog: number
  /** The statement alone (in its transaction), milliseconds: median, fastest and slowest of the timed runs. */
  readonly medianMs: number
  readonly minMs: number
  readonly maxMs: number
  /** Shared buffers of the statement's EXPLAIN (ANALYZE, BUFFERS): found in PostgreSQL's cache, and read in. */
  readonly sharedHit: number
  readonly sharedRead: number
  /**
   * Of those, the UPDATE's own: writing the leases (a new version of each claimed row, and an entry in each index
   * unless it stays on its page). They follow the rows claimed; the rest, reading, must not follow the backlog.
   */
  readonly leaseWriteBuffers: number
  /** What a claim took: deliveries of the quiet endpoints (one each), and of the hot endpoint. */
  readonly quietClaimed: number
  readonly hotClaimed: number
}

export interface ClaimCostFigures {
  /** `SHOW server_version`. */
  readonly postgres: string
  readonly quietEndpoints: number
  readonly request: Pick<ClaimRequest, "limit" | "endpointConcurrency" | "tenantConcurrency">
  readonly runs: number
  readonly rows: ReadonlyArray<ClaimCost>
}

export interface ClaimCostOptions {
  /** Backlog sizes of the hot endpoint, ascending. */
  readonly backlogs: ReadonlyArray<number>
  readonly quietEndpoints: number
  readonly runs: number
  readonly log: (line: string) => void
}

/** How the hot endpoint's rows are written; the states above are measured on these. */
type RowShape = "due" | "scheduled" | "leased"

const statesOf: Record<RowShape, ReadonlyArray<BacklogState>> = {
  due: ["due", "at its limit", "another worker at its limit", "circuit open"],
  scheduled: ["retries scheduled", "retries scheduled, one new"],
  leased: ["all leased elsewhere"]
}

const database = "codex_bench_claim_cost"

interface Endpoint {
  readonly tenantId: string
  readonly endpointId: string
}

/** Ends a transaction in a rollback. */
class RolledBack extends Data.TaggedError("RolledBack") {}

interface PlanNode {
  readonly "Node Type": string
  readonly "Shared Hit Blocks": number
  readonly "Shared Read Blocks": number
  readonly Plans?: ReadonlyArray<PlanNode>
}

const buffers = (node: PlanNode) => node["Shared Hit Blocks"] + node["Shared Read Blocks"]

/** The buffers of the plan's ModifyTable nodes themselves, not of the nodes feeding them. */
const modifyBuffers = (node: PlanNode): number =>
  (node["Node Type"] === "ModifyTable"
    ? buffers(node) - (node.Plans ?? []).reduce((sum, child) => sum + buffers(child), 0)
    : 0) + (node.Plans ?? []).reduce((sum, child) => sum + modifyBuffers(child), 0)

const program = (options: ClaimCostOptions) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* runMigrations

    /** `count` tenants with one endpoint each. */
    const createEndpoints = (count: number, name: string) =>
      Effect.map(
        sql<{ readonly tenant_id: string; readonly endpoint_id: string }>`
          WITH t AS (
            INSERT INTO tenants (id, name)
            SELECT 'ten_' || codex_ulid(), ${name} || ' ' || n FROM generate_series(1, ${count}::int) n
            RETURNING id
          )
          INSERT INTO endpoints (id, tenant_id, url, secret)
          SELECT 'ep_' || codex_ulid(), t.id, 'http://127.0.0.1:9/' || t.id, 's' FROM t
          RETURNING tenant_id, id AS endpoint_id`,
        (rows) => rows.map((row): Endpoint => ({ tenantId: row.tenant_id, endpointId: row.endpoint_id }))
      )
    const [hot] = yield* createEndpoints(1, "Hot")
    if (hot === undefined) return yield* Effect.die(new Error("the hot endpoint was not created"))
    const quiet = yield* createEndpoints(options.quietEndpoints, "Quiet")
    const quietIds = new Set(quiet.map((endpoint) => endpoint.endpointId))

    // Ids from row numbers (in the format the CHECKs ask for): a million codex_ulid() calls would take a minute.
    yield* sql`
      INSERT INTO events (id, tenant_id, type, data, occurred_at)
      SELECT 'evt_Q' || lpad(e.n::text, 25, '0'), e.tenant_id, 'quiet.item', '{}', now()
      FROM unnest(${quiet.map((endpoint) => endpoint.tenantId)}::text[]) WITH ORDINALITY AS e (tenant_id, n)`
    const insertQuietDeliveries = sql`
      INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, next_attempt_at)
      SELECT 'dlv_Q' || lpad(e.n::text, 25, '0'), e.tenant_id, 'evt_Q' || lpad(e.n::text, 25, '0'), e.endpoint_id,
             now() - interval '1 minute'
      FROM unnest(${quiet.map((endpoint) => endpoint.tenantId)}::text[],
                  ${quiet.map((endpoint) => endpoint.endpointId)}::text[]) WITH ORDINALITY AS e (tenant_id, endpoint_id, n)`

    // The hot endpoint's events, one per delivery ((event, endpoint) is unique), written once for every shape.
    const hotEvents = yield* Ref.make(0)
    const ensureHotEvents = (count: number) =>
      Effect.gen(function* () {
        const have = yield* Ref.get(hotEvents)
        if (count <= have) return
        yield* sql`
          INSERT INTO events (id, tenant_id, type, data, occurred_at)
          SELECT 'evt_H' || lpad(n::text, 25, '0'), ${hot.tenantId}, 'hot.item', '{}', now()
          FROM generate_series(${have + 1}::int, ${count}::int) n`
        yield* Ref.set(hotEvents, count)
      })

    /**
     * The hot endpoint's deliveries `from`..`to`: due within the last two hours and free, the same leased by other
     * workers for an hour, or scheduled an hour ahead. Times a millisecond apart, as a real backlog's are.
     */
    const insertHotDeliveries = (shape: RowShape, from: number, to: number) => {
      const step = sql`make_interval(secs => n / 1000.0)`
      const nextAttemptAt =
        shape === "scheduled" ? sql`now() + interval '1 hour' + ${step}` : sql`now() - interval '2 hours' + ${step}`
      const lockedUntil = shape === "leased" ? sql`now() + interval '1 hour' + ${step}` : sql`NULL`
      return sql`
        INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, next_attempt_at, locked_until, locked_by)
        SELECT 'dlv_H' || lpad(n::text, 25, '0'), ${hot.tenantId}, 'evt_H' || lpad(n::text, 25, '0'),
               ${hot.endpointId}, ${nextAttemptAt}, ${lockedUntil}, ${shape === "leased" ? "wkr_other" : null}
        FROM generate_series(${from}::int, ${to}::int) n`
    }

    /** What a state changes for its measurement (a few rows at most), and puts back after it. */
    const arranged = (
      state: BacklogState
    ): {
      readonly before: Effect.Effect<unknown, SqlError.SqlError>
      readonly after: Effect.Effect<unknown, SqlError.SqlError>
    } => {
      switch (state) {
        case "another worker at its limit":
          return {
            before: sql`
              UPDATE deliveries SET locked_until = now() + interval '1 hour', locked_by = 'wkr_other'
              WHERE id IN (
                SELECT id FROM deliveries WHERE endpoint_id = ${hot.endpointId} AND status = 'pending'
                ORDER BY next_attempt_at LIMIT 4
              )`,
            after: sql`
              UPDATE deliveries SET locked_until = NULL, locked_by = NULL
              WHERE endpoint_id = ${hot.endpointId} AND locked_by = 'wkr_other'`
          }
        case "circuit open":
          return {
            before: sql`UPDATE endpoints SET paused_until = now() + interval '1 hour' WHERE id = ${hot.endpointId}`,
            after: sql`UPDATE endpoints SET paused_until = NULL WHERE id = ${hot.endpointId}`
          }
        case "retries scheduled, one new":
          return {
            before: Effect.andThen(
              sql`
                INSERT INTO events (id, tenant_id, type, data, occurred_at)
                VALUES ('evt_N' || lpad('1', 25, '0'), ${hot.tenantId}, 'hot.item', '{}', now())
                ON CONFLICT (id) DO NOTHING`,
              sql`
                INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id)
                VALUES ('dlv_N' || lpad('1', 25, '0'), ${hot.tenantId}, 'evt_N' || lpad('1', 25, '0'), ${hot.endpointId})`
            ),
            after: sql`DELETE FROM deliveries WHERE id = 'dlv_N' || lpad('1', 25, '0')`
          }
        default:
          return { before: Effect.void, after: Effect.void }
      }
    }

    const request = (state: BacklogState): ClaimRequest => {
      const busy = state === "at its limit"
      return {
        limit: 64,
        busyEndpoints: new Map(busy ? [[hot.endpointId, 4]] : []),
        busyTenants: new Map(busy ? [[hot.tenantId, 4]] : []),
        endpointConcurrency: 4,
        tenantConcurrency: 16,
        leaseSeconds: 60,
        workerId: "wkr_bench_claim"
      }
    }

    /** `effect` in a transaction that is rolled back; what it returned. */
    const rolledBack = <A, E>(effect: Effect.Effect<A, E>) =>
      Effect.gen(function* () {
        const result = yield* Ref.make(Option.none<A>())
        yield* sql
          .withTransaction(
            effect.pipe(
              Effect.tap((value) => Ref.set(result, Option.some(value))),
              Effect.andThen(Effect.fail(new RolledBack()))
            )
          )
          .pipe(Effect.catchTag("RolledBack", () => Effect.void))
        return Option.getOrThrow(yield* Ref.get(result))
      })

    /** One claim: how long the statement took (ms), and what it claimed; rolled back. */
    const timedClaim = (state: BacklogState) =>
      rolledBack(
        Effect.gen(function* () {
          const started = performance.now()
          const rows = yield* claimDue(sql, request(state))
          return { ms: performance.now() - started, rows }
        })
      )

    /** The claim's EXPLAIN (ANALYZE, BUFFERS): it runs, so it is rolled back too. */
    const explained = (state: BacklogState) =>
      Effect.gen(function* () {
        const [text, params] = claimDueStatement(sql, request(state)).compile()
        const [row] = yield* rolledBack(
          sql.unsafe<{ readonly "QUERY PLAN": unknown }>(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${text}`, params)
        )
        const raw = row?.["QUERY PLAN"]
        const plan: unknown = typeof raw === "string" ? JSON.parse(raw) : raw
        const root = (Array.isArray(plan) ? plan[0] : undefined) as { readonly Plan: PlanNode } | undefined
        if (root === undefined) return yield* Effect.die(new Error(`no plan: ${JSON.stringify(plan)}`))
        return root.Plan
      })

    const measure = (state: BacklogState, backlog: number) =>
      Effect.gen(function* () {
        const { before, after } = arranged(state)
        yield* before
        // The plan first, on a table without the dead row versions earlier claims left (each rolled back).
        yield* sql`VACUUM deliveries`
        const plan = yield* explained(state)
        const durations: Array<number> = []
        let claimed: ReadonlyArray<ClaimedRow> = []
        for (let run = -2; run < options.runs; run++) {
          const claim = yield* timedClaim(state)
          if (run >= 0) durations.push(claim.ms)
          claimed = claim.rows
        }
        yield* after
        const sorted = [...durations].sort((a, b) => a - b)
        const round = (n: number) => Math.round(n * 100) / 100
        const cost: ClaimCost = {
          state,
          backlog,
          medianMs: round(median(durations)),
          minMs: round(sorted[0] ?? Number.NaN),
          maxMs: round(sorted.at(-1) ?? Number.NaN),
          sharedHit: plan["Shared Hit Blocks"],
          sharedRead: plan["Shared Read Blocks"],
          leaseWriteBuffers: modifyBuffers(plan),
          quietClaimed: claimed.filter((row) => quietIds.has(row.endpoint_id)).length,
          hotClaimed: claimed.filter((row) => row.endpoint_id === hot.endpointId).length
        }
        options.log(
          `${state}, backlog ${backlog.toLocaleString("en-US")}: ${cost.medianMs} ms, ` +
            `${cost.sharedHit + cost.sharedRead} buffers (${cost.leaseWriteBuffers} writing leases); took ${cost.quietClaimed} quiet + ${cost.hotClaimed} hot`
        )
        return cost
      })

    const rows: Array<ClaimCost> = []
    for (const shape of ["due", "scheduled", "leased"] as const) {
      // Each shape from scratch: the quiet deliveries, then the hot endpoint's backlog grown size by size.
      yield* sql`TRUNCATE deliveries CASCADE`
      yield* insertQuietDeliveries
      let inserted = 0
      for (const backlog of options.backlogs) {
        yield* ensureHotEvents(backlog)
        if (backlog > inserted) {
          options.log(`writing the hot endpoint's backlog (${shape}): ${backlog.toLocaleString("en-US")} rows`)
          yield* insertHotDeliveries(shape, inserted + 1, backlog)
          inserted = backlog
        }
        yield* sql`VACUUM ANALYZE deliveries`
        for (const state of statesOf[shape]) rows.push(yield* measure(state, backlog))
      }
    }
    const { limit, endpointConcurrency, tenantConcurrency } = request("due")
    const [version] = yield* sql<{ readonly server_version: string }>`SHOW server_version`
    return {
      postgres: version?.server_version ?? "unknown",
      quietEndpoints: options.quietEndpoints,
      request: { limit, endpointConcurrency, tenantConcurrency },
      runs: options.runs,
      rows
    } satisfies ClaimCostFigures
  })

export const measureClaimCost = async (serverUrl: string, options: ClaimCostOptions): Promise<ClaimCostFigures> => {
  const url = await scratchDatabase(serverUrl, database)
  try {
    // One connection: the statements run one after another, and VACUUM needs none of them to hold a snapshot.
    const client = PgClient.layer({ url: Redacted.make(url), maxConnections: 1 })
    return await Effect.runPromise(program(options).pipe(Effect.provide(Layer.fresh(client)), Effect.orDie))
  } finally {
    await dropScratchDatabase(serverUrl, database)
  }
}

/** One row per state, one column per backlog: median time and shared buffers of one claim, and what it took. */
export const claimCostTable = (figures: ClaimCostFigures): string => {
  const backlogs = [...new Set(figures.rows.map((row) => row.backlog))]
  const count = (n: number) => n.toLocaleString("en-US")
  const lines = [
    `| hot endpoint's backlog (${figures.quietEndpoints} quiet endpoints, limit ${figures.request.limit}) | ${backlogs
      .map((backlog) => `${count(backlog)} rows`)
      .join(" | ")} | took (quiet + hot) |`,
    `|---|${backlogs.map(() => "---").join("|")}|---|`
  ]
  for (const state of Object.values(statesOf).flat()) {
    const cells = backlogs.map((backlog) => {
      const row = figures.rows.find((r) => r.state === state && r.backlog === backlog)
      if (row === undefined) return "–"
      const total = row.sharedHit + row.sharedRead
      return `${row.medianMs} ms, ${count(total)} buffers (${count(total - row.leaseWriteBuffers)} reading)`
    })
    const took = [
      ...new Set(
        figures.rows.filter((row) => row.state === state).map((row) => `${row.quietClaimed} + ${row.hotClaimed}`)
      )
    ]
    lines.push(`| ${state} | ${cells.join(" | ")} | ${took.join(", ")} |`)
  }
  return lines.join("\n")
}

/** The table with what it measures, for bench/results/claim-cost.md. */
export const claimCostMarkdown = (figures: ClaimCostFigures, date: string): string =>
  [
    "# The claim beside one endpoint's backlog (`npm run bench:claim-cost`)",
    "",
    `One claim (\`claimDue\`: limit ${figures.request.limit}, DELIVERY_ENDPOINT_CONCURRENCY ` +
      `${figures.request.endpointConcurrency}, DELIVERY_TENANT_CONCURRENCY ${figures.request.tenantConcurrency}) on ` +
      `PostgreSQL ${figures.postgres}, beside one hot endpoint's pending deliveries and ${figures.quietEndpoints} ` +
      "quiet endpoints of other tenants with one due delivery each (see bench/scenarios/claim-cost.ts). Median time " +
      `of ${figures.runs} runs, each rolled back; the shared buffers of its EXPLAIN (ANALYZE, BUFFERS), all of them ` +
      "and those reading: the rest write the leases (a new version of each claimed row, and index entries unless it " +
      "stays on its page), which follow the rows claimed. Every state but the last is one the workers come to; in the " +
      "last, more leases are held than workers may hold (DELIVERY_ENDPOINT_CONCURRENCY each), and the claim passes " +
      `over leases one by one. Measured ${date.slice(0, 10)} on a shared 2-core machine.`,
    "",
    claimCostTable(figures),
    ""
  ].join("\n")
