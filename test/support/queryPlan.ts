import { Effect } from "effect"
import type { SqlClient, Statement } from "effect/sql"

/** A node of EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON), with the fields the tests read. */
export interface PlanNode {
  readonly "Node Type": string
  readonly "Actual Rows": number
  readonly "Actual Loops": number
  readonly "Shared Hit Blocks": number
  readonly "Shared Read Blocks": number
  readonly Plans?: ReadonlyArray<PlanNode>
}

/**
 * The plan of `statement` as it ran: EXPLAIN (ANALYZE, BUFFERS) executes it, so a write is done (or rolled back with
 * the caller's transaction). Its root node: buffers and rows of the whole statement.
 */
export const explainAnalyze = (sql: SqlClient.SqlClient, statement: Statement.Statement<unknown>) =>
  Effect.gen(function* () {
    const [text, params] = statement.compile()
    const [explained] = yield* sql.unsafe<{ readonly "QUERY PLAN": unknown }>(
      `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${text}`,
      params
    )
    const raw = explained?.["QUERY PLAN"]
    const plan: unknown = typeof raw === "string" ? JSON.parse(raw) : raw
    const root = (Array.isArray(plan) ? plan[0] : undefined) as { readonly Plan: PlanNode } | undefined
    if (root === undefined) return yield* Effect.die(new Error(`no plan: ${JSON.stringify(plan)}`))
    return root.Plan
  })

/** Shared buffers the node (with everything under it) found in the cache or read: the pages it touched. */
export const pagesOf = (node: PlanNode): number => node["Shared Hit Blocks"] + node["Shared Read Blocks"]

/** Rows the plan's LockRows nodes passed on, i.e. locked (`FOR UPDATE`), over all their loops. */
export const lockedRows = (node: PlanNode): number =>
  (node["Node Type"] === "LockRows" ? node["Actual Rows"] * node["Actual Loops"] : 0) +
  (node.Plans ?? []).reduce((sum, child) => sum + lockedRows(child), 0)

/**
 * The pages the statement read to decide what to write: all but those its UPDATE/INSERT/DELETE nodes touched
 * themselves (a new row version, an entry in each index, or none when the update stays on its page): what a
 * statement writes follows the rows it writes, what it reads to find them must not follow the table.
 */
export const pagesReadOf = (node: PlanNode): number => pagesOf(node) - modifyPages(node)

const modifyPages = (node: PlanNode): number =>
  (node["Node Type"] === "ModifyTable"
    ? pagesOf(node) - (node.Plans ?? []).reduce((sum, child) => sum + pagesOf(child), 0)
    : 0) + (node.Plans ?? []).reduce((sum, child) => sum + modifyPages(child), 0)
