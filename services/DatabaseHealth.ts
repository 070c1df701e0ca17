import { Context, type Effect } from "effect"

export interface DatabaseStatus {
  readonly status: "up" | "down"
  /** Round-trip time of the probe query, or the time spent before giving up. */
  readonly latencyMs: number
}

/**
 * Probes the database for readiness and health endpoints. Never fails: a broken database is a `down` status. The
 * answer may be up to about a second old: probes are unauthenticated, so they must not cost a query each.
 */
export interface DatabaseHealthShape {
  readonly check: Effect.Effect<DatabaseStatus>
}

export class DatabaseHealth extends Context.Service<DatabaseHealth, DatabaseHealthShape>()("codex/DatabaseHealth") {}
