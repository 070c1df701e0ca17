import { Context, type Effect, type Option } from "effect"

/**
 * The outbox as the database sees it: the same numbers from every replica (they all read one table with the
 * database's clock), so across replicas take `max()`, never `sum()`.
 */
export interface OutboxState {
  /** Deliveries with status `pending`, due or scheduled for later (backoff, open circuit), counted up to a cap. */
  readonly pending: number
  /**
   * `now() - min(next_attempt_at)` over pending deliveries that are due (`next_attempt_at <= now()`), in seconds: how
   * long the oldest due delivery has been waiting for an attempt. 0 when none is due.
   */
  readonly oldestAgeSeconds: number
}

/** Reads the outbox state for the `webhook_deliveries_pending` / `webhook_outbox_oldest_age_seconds` gauges. */
export interface OutboxStatsShape {
  /**
   * Never fails: None when the database did not answer in time (the gauges then have no sample, rather than a
   * made-up 0). The answer may be a few seconds old: scrapes share one query.
   */
  readonly read: Effect.Effect<Option.Option<OutboxState>>
}

export class OutboxStats extends Context.Service<OutboxStats, OutboxStatsShape>()("codex/OutboxStats") {}
