/**
 * The worker's claim beside one endpoint's backlog of 0, 10,000, 100,000 and 1,000,000 pending deliveries (due, held
 * by other workers, paused behind an open circuit, waiting for retries) and 50 quiet endpoints of other tenants (see
 * scenarios/claim-cost.ts). Issue 17: the claim's cost must not follow the backlog. Writes
 * bench/results/claim-cost.{json,md} (not with BENCH_SMOKE or BENCH_CLAIM_BACKLOGS).
 *
 *   npm run bench:claim-cost      (BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres: any database of the
 *                                  server; a scratch database codex_bench_claim_cost is created there and dropped
 *                                  after; BENCH_CLAIM_RUNS=15 BENCH_CLAIM_QUIET=50; 3 to 5 minutes, most of it writing
 *                                  the backlogs)
 *   BENCH_CLAIM_BACKLOGS=0,1000   these backlog sizes only
 *   BENCH_SMOKE=1                 backlogs of 0 and 1,000, 3 runs: the harness still works
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { claimCostMarkdown, claimCostTable, measureClaimCost } from "./scenarios/claim-cost.ts"

const smoke = process.env.BENCH_SMOKE === "1" || process.env.BENCH_SMOKE === "true"
const log = (line: string) => console.error(`[bench:claim-cost] ${line}`)
const sizes = process.env.BENCH_CLAIM_BACKLOGS
const backlogs =
  sizes !== undefined && sizes !== ""
    ? sizes.split(",").map((size) => Number(size.trim()))
    : smoke
      ? [0, 1_000]
      : [0, 10_000, 100_000, 1_000_000]
if (backlogs.some((size) => !Number.isInteger(size) || size < 0)) throw new Error(`BENCH_CLAIM_BACKLOGS: ${sizes}`)

const began = Date.now()
const figures = await measureClaimCost(
  process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
  {
    backlogs: [...backlogs].sort((a, b) => a - b),
    quietEndpoints: Number(process.env.BENCH_CLAIM_QUIET ?? 50),
    runs: Number(process.env.BENCH_CLAIM_RUNS ?? (smoke ? 3 : 15)),
    log
  }
)
const table = claimCostTable(figures)
console.log(table)
log(`${Math.round((Date.now() - began) / 1000)} s`)
// Only a full run is a result to keep.
if (!smoke && (sizes === undefined || sizes === "")) {
  const outDir = join("bench", "results")
  mkdirSync(outDir, { recursive: true })
  const meta = { date: new Date().toISOString(), node: process.version, elapsedSeconds: (Date.now() - began) / 1000 }
  writeFileSync(join(outDir, "claim-cost.json"), `${JSON.stringify({ meta, ...figures }, null, 2)}\n`)
  writeFileSync(join(outDir, "claim-cost.md"), claimCostMarkdown(figures, meta.date))
}
