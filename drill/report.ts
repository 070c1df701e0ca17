/** The drill's report: per scenario what was sent, answered, stored and delivered, and each invariant's verdict. */

export interface Invariant {
  readonly name: string
  readonly ok: boolean
  readonly detail: string
}

export interface ScenarioReport {
  readonly name: string
  /** Requests sent, client retries included. */
  readonly requests: number
  /** Every answer's status (0 = no answer). */
  readonly statuses: Record<string, number>
  readonly accepted: number
  readonly stored: number
  readonly delivered: number
  readonly lost: number
  readonly duplicates: number
  readonly fiveXx: number
  readonly hangs: number
  readonly recoveryMs?: number
  readonly deliveryLatency?: { readonly p50Ms: number; readonly p99Ms: number }
  readonly durationMs: number
  readonly invariants: ReadonlyArray<Invariant>
}

export interface DrillResults {
  readonly date: string
  readonly short: boolean
  readonly elapsedSeconds: number
  readonly scenarios: ReadonlyArray<ScenarioReport>
}

export const renderReport = (r: DrillResults): string =>
  [
    `## Reliability drill${r.short ? " (short run)" : ""}`,
    "",
    `${r.date}: three replicas behind nginx, one PostgreSQL, one Redis, all on 127.0.0.1; ${r.elapsedSeconds} s in all.`,
    "",
    "| scenario | requests | statuses | accepted | stored | delivered | lost | duplicates | 5xx | hangs | recovery | delivery p50 / p99 |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...r.scenarios.map(
      (s) =>
        `| ${s.name} | ${s.requests} | ${Object.entries(s.statuses)
          .map(([k, v]) => `${k === "0" ? "none" : k}×${v}`)
          .join(" ")} | ${s.accepted} | ${s.stored} | ${s.delivered} | ${s.lost} | ${s.duplicates} | ${s.fiveXx} | ` +
        `${s.hangs} | ${s.recoveryMs === undefined ? "" : `${s.recoveryMs} ms`} | ` +
        `${s.deliveryLatency === undefined ? "" : `${s.deliveryLatency.p50Ms} / ${s.deliveryLatency.p99Ms} ms`} |`
    ),
    "",
    "| scenario | invariant | held | detail |",
    "|---|---|---|---|",
    ...r.scenarios.flatMap((s) =>
      s.invariants.map(
        (i) => `| ${s.name} | ${i.name} | ${i.ok ? "yes" : "**NO**"} | ${i.detail.replaceAll("|", "/")} |`
      )
    ),
    ""
  ].join("\n")
