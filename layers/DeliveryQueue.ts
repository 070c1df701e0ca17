import { Duration, Effect } from "effect"
import type { SqlClient, SqlError } from "effect/sql"
import type { AttemptResult, Decision } from "../src/domain/DeliveryDecision.ts"
import { storedDecision } from "../src/domain/DeliveryDecision.ts"
import { DeliveryExhausted, EndpointDisabled, operationalPrefix } from "../src/domain/OperationalEvents.ts"
import { type ClaimedRow, type ClaimRequest, claimDue } from "./DeliveryClaim.ts"
import { makeEndpointHealth } from "./EndpointHealthSql.ts"
import { operationalEventCtes, operationalQueued } from "./OperationalEventsSql.ts"

/** One finished attempt, to be recorded with the delivery's next state. */
export interface Completion {
  readonly row: ClaimedRow
  /** 1-based: the delivery's attempt count once this one is recorded. */
  readonly attempt: number
  readonly startedAt: Date
  readonly durationMs: number
  readonly result: AttemptResult
  readonly decision: Decision
}

/**
 * What recording an attempt did to its delivery: moved on as decided (`succeeded`, `failed`, `retry scheduled`,
 * `endpoint disabled`); left `cancelled` (cancelled while the attempt was in flight: the attempt counts); `lease lost`
 * (another worker holds it now: the attempt is recorded, the delivery left to that worker); `delivery deleted` (its
 * tenant was deleted meanwhile: nothing is left to record the attempt on).
 */
export type CompletionState =
  | "succeeded"
  | "failed"
  | "retry scheduled"
  | "endpoint disabled"
  | "cancelled"
  | "lease lost"
  | "delivery deleted"

const movedState = (decision: Decision): CompletionState => {
  switch (decision._tag) {
    case "Succeeded":
      return "succeeded"
    case "Failed":
      return "failed"
    case "Gone":
      return "endpoint disabled"
    case "Retry":
      return "retry scheduled"
  }
}

/** A completion as one element of the JSON array `complete` reads with `json_to_recordset`. */
const completionRecord = (completion: Completion) => {
  const { status, delaySeconds } = storedDecision(completion.decision)
  return {
    id: completion.row.id,
    attempt: completion.attempt,
    started_at: completion.startedAt.toISOString(),
    duration_ms: completion.durationMs,
    outcome: completion.result.outcome,
    status_code: completion.result.statusCode,
    error: completion.result.error,
    excerpt: completion.result.excerpt,
    status,
    delay_seconds: delaySeconds
  }
}

/** The queue's state in SQL, for one worker: what it claims, records, defers, cancels and releases. */
export interface DeliveryQueue {
  /** Due deliveries, fairly across tenants and endpoints, leased to this worker (see DeliveryClaim.ts). */
  readonly claim: (
    request: Omit<ClaimRequest, "leaseSeconds" | "workerId">
  ) => Effect.Effect<ReadonlyArray<ClaimedRow>, SqlError.SqlError>
  /**
   * Records finished attempts and moves their deliveries on, in one statement for the whole batch, each delivery only
   * while this worker holds its lease (the attempt is recorded either way: the request was sent). Not for `Gone`.
   */
  readonly complete: (
    batch: ReadonlyArray<Completion>
  ) => Effect.Effect<ReadonlyMap<string, CompletionState>, SqlError.SqlError>
  /** `complete` for one finished attempt (not `Gone`): what became of its delivery. */
  readonly completeOne: (completion: Completion) => Effect.Effect<CompletionState, SqlError.SqlError>
  /** Records a 410 Gone attempt, disables the endpoint and cancels everything still pending for it: one transaction. */
  readonly completeGone: (completion: Completion) => Effect.Effect<CompletionState, SqlError.SqlError>
  /**
   * Pauses a claimed delivery's endpoint for `wait` and gives the delivery back without using an attempt (the
   * endpoint's circuit refused it): none of the endpoint's deliveries is claimed until then.
   */
  readonly defer: (row: ClaimedRow, wait: Duration.Duration) => Effect.Effect<void, SqlError.SqlError>
  /** Cancels a claimed delivery without sending it, `lastError` saying why. */
  readonly cancel: (row: ClaimedRow, lastError: string) => Effect.Effect<void, SqlError.SqlError>
  /**
   * Gives back the leases this worker still holds among `ids` (at shutdown): another worker takes those deliveries at
   * once. By id, so that no index on `locked_by` is needed (one would make every claim a non-HOT update).
   */
  readonly releaseHeld: (ids: ReadonlyArray<string>) => Effect.Effect<number, SqlError.SqlError>
}

export const makeDeliveryQueue = (
  sql: SqlClient.SqlClient,
  options: { readonly workerId: string; readonly leaseSeconds: number; readonly disableAfterSeconds: number }
): DeliveryQueue => {
  const { workerId, leaseSeconds } = options
  const endpointHealth = makeEndpointHealth(sql, options)

  /**
   * The batch as rows (`json_to_recordset`, one parameter whatever its size), its deliveries held against deletion
   * until the statement ends (FOR KEY SHARE: one deleted meanwhile yields no row, and its attempt is not recorded,
   * where it would otherwise fail on the foreign key), the attempts INSERTed, and each delivery UPDATEd as decided if
   * this worker still holds it, or kept cancelled if it was cancelled in flight (its attempt counted), by one UPDATE:
   * readers never see an attempt without its count, even when the cancel commits while the statement runs. Sorted
   * by id, so concurrent batches lock rows in the same order. Every read of `deliveries` names the batch's ids as
   * `id = ANY (ARRAY(...))`, an index condition on the primary key: joined to the recordset (which the planner takes
   * for 100 rows) it chose a sequential scan of the whole table, three per batch (2.9 ms for 11 rows beside 10,000
   * deliveries, two thirds of the store's time in the worker benchmark).
   *
   * A delivery that fails for good (its last attempt) is reported by a `codex.delivery.exhausted` event, written by
   * the same statement (OperationalEventsSql), unless it delivered an operational event itself: two dead endpoints
   * subscribed to each other's failures would otherwise report them to each other forever. Only batches with such a
   * failure carry those CTEs: the common batch's statement stays as short to plan as it was.
   */
  const record = (batch: ReadonlyArray<Completion>) => {
    // Failed for good (a 410 Gone is not exhausted: its endpoint is disabled, and reported so).
    const exhausting = batch.some((completion) => completion.decision._tag === "Failed")
    const exhausted = exhausting
      ? sql`, ${operationalEventCtes(
          sql,
          sql`SELECT m.tenant_id, ${DeliveryExhausted}::text AS type,
                     json_build_object('deliveryId', m.id, 'eventId', m.event_id, 'eventType', ev.type,
                                       'endpointId', m.endpoint_id, 'attempts', i.attempt,
                                       'lastStatus', i.status_code, 'lastError', i.error) AS data,
                     m.endpoint_id AS about_endpoint
              FROM moved m JOIN input i ON i.id = m.id JOIN events ev ON ev.id = m.event_id
              WHERE i.status = 'failed' AND i.outcome <> 'gone' AND NOT starts_with(ev.type, ${operationalPrefix})`
        )}`
      : sql``
    return sql<{ readonly id: string; readonly recorded: boolean; readonly moved: boolean; readonly kept: boolean }>`
      WITH input AS (
        SELECT * FROM json_to_recordset(${JSON.stringify(batch.map(completionRecord))}::json) AS i(
          id text, attempt int, started_at timestamptz, duration_ms int, outcome text, status_code int, error text,
          excerpt text, status text, delay_seconds float8)
      ), target AS (
        SELECT d.id, d.event_id FROM deliveries d WHERE d.id = ANY (ARRAY(SELECT id FROM input)) ORDER BY d.id
        FOR KEY SHARE
      ), recorded AS (
        -- No excerpt for an event expunged meanwhile (the send was in flight): what the receiver said about it goes.
        INSERT INTO delivery_attempts
          (delivery_id, attempt, started_at, duration_ms, outcome, status_code, error, response_excerpt)
        SELECT i.id, i.attempt, i.started_at, i.duration_ms, i.outcome, i.status_code, i.error,
               CASE WHEN i.excerpt IS NOT NULL AND NOT EXISTS (
                      SELECT 1 FROM events ev WHERE ev.id = t.event_id AND ev.data_expunged_at IS NOT NULL)
                    THEN i.excerpt END
        FROM input i JOIN target t ON t.id = i.id
        RETURNING delivery_id
      ), settled AS (
        -- One UPDATE for both cases, so that a cancel committed while this statement runs (an expunge, an endpoint
        -- disabled) is seen: a row this worker holds that was pending in the snapshot is re-read once the cancel has
        -- committed (READ COMMITTED re-checks the WHERE on the new version), and is then kept cancelled, its attempt
        -- counted, in this statement. Two UPDATEs ("pending and ours", "cancelled") would judge that row by the
        -- snapshot: neither applies, and readers would see the attempt without its count until a second statement.
        -- In SET, d.status is the row before this UPDATE; in RETURNING, after it (never 'cancelled' when moved).
        UPDATE deliveries d SET
          status = CASE WHEN d.status = 'pending' THEN i.status ELSE d.status END,
          delivered_at = CASE WHEN d.status = 'pending' AND i.status = 'succeeded' THEN now() ELSE d.delivered_at END,
          next_attempt_at = CASE WHEN d.status = 'pending' AND i.delay_seconds IS NOT NULL
                                 THEN now() + make_interval(secs => i.delay_seconds) ELSE d.next_attempt_at END,
          attempt_count = CASE WHEN d.status = 'pending' THEN i.attempt ELSE GREATEST(d.attempt_count, i.attempt) END,
          locked_until = NULL, locked_by = NULL, last_status = i.status_code,
          last_error = CASE WHEN d.status = 'pending' THEN i.error ELSE d.last_error END, updated_at = now()
        FROM input i
        WHERE d.id = ANY (ARRAY(SELECT id FROM input)) AND d.id = i.id
          AND ((d.locked_by = ${workerId} AND d.status = 'pending') OR d.status = 'cancelled')
        RETURNING d.id, d.tenant_id, d.event_id, d.endpoint_id, d.status
      ), moved AS (
        SELECT id, tenant_id, event_id, endpoint_id FROM settled WHERE status <> 'cancelled'
      ), kept AS (
        SELECT id FROM settled WHERE status = 'cancelled'
      ) ${exhausted}
      SELECT i.id,
             EXISTS (SELECT 1 FROM recorded r WHERE r.delivery_id = i.id) AS recorded,
             EXISTS (SELECT 1 FROM moved m WHERE m.id = i.id) AS moved,
             EXISTS (SELECT 1 FROM kept k WHERE k.id = i.id) AS kept
             ${exhausting ? sql`, ${operationalQueued(sql)} AS operational_queued` : sql``}
      FROM input i`
  }

  /**
   * The excerpts of attempts just recorded for deliveries kept cancelled, erased if their event was expunged: an
   * expunge that committed while the record ran (its cancel is what kept them) came after the record's snapshot,
   * which still saw the data and stored what the receiver said. Only a new statement sees the expunge.
   */
  const eraseExpungedExcerpts = (kept: ReadonlyArray<Completion>) =>
    kept.length === 0
      ? Effect.void
      : Effect.asVoid(sql`
          UPDATE delivery_attempts a SET response_excerpt = NULL
          FROM deliveries d JOIN events ev ON ev.id = d.event_id
          WHERE d.id IN ${sql.in(kept.map((c) => c.row.id))} AND a.delivery_id = d.id
            AND ev.data_expunged_at IS NOT NULL AND a.response_excerpt <> ''`)

  const complete = (batch: ReadonlyArray<Completion>) =>
    Effect.gen(function* () {
      const sorted = [...batch].sort((a, b) => (a.row.id < b.row.id ? -1 : a.row.id > b.row.id ? 1 : 0))
      const rows = yield* record(sorted)
      const outcomes = new Map(rows.map((row) => [row.id, row]))
      const states = new Map<string, CompletionState>()
      const keptWithExcerpt: Array<Completion> = []
      for (const completion of sorted) {
        const outcome = outcomes.get(completion.row.id)
        if (outcome?.moved === true) states.set(completion.row.id, movedState(completion.decision))
        else if (outcome?.kept === true) {
          states.set(completion.row.id, "cancelled")
          if (completion.result.excerpt !== null && completion.result.excerpt !== "") keptWithExcerpt.push(completion)
        } else if (outcome?.recorded !== true) states.set(completion.row.id, "delivery deleted")
        // Recorded but neither moved nor kept: another worker holds the lease now.
        else states.set(completion.row.id, "lease lost")
      }
      yield* eraseExpungedExcerpts(keptWithExcerpt)
      // The endpoints' failing streaks (a 410 Gone disables its endpoint by itself: not a streak).
      yield* endpointHealth(
        sorted
          .filter((c) => states.get(c.row.id) !== "delivery deleted" && c.result.outcome !== "gone")
          .map((c) => ({ row: c.row, succeeded: c.result.outcome === "succeeded" }))
      )
      return states as ReadonlyMap<string, CompletionState>
    })

  const completeOne = (completion: Completion) =>
    Effect.map(complete([completion]), (states) => states.get(completion.row.id) ?? "delivery deleted")

  const completeGone = (completion: Completion) =>
    // A transaction holds a pooled connection: SQL only inside (the send is over), never a network wait.
    Effect.gen(function* () {
      const state = yield* completeOne(completion)
      if (state === "delivery deleted") return state
      // 410 Gone: the receiver asks us to stop. Disable the endpoint and cancel everything still pending for it (a
      // deleted endpoint stays as its deletion left it: it has nothing pending, and no one reads it).
      // Reported by `codex.endpoint.disabled` (reason `gone`) when this disabled it (not when it already was).
      yield* sql`
        WITH disabled AS (
          UPDATE endpoints SET enabled = false, updated_at = now(),
            disabled_reason = ${`the endpoint answered 410 Gone (delivery ${completion.row.id})`}
          WHERE id = ${completion.row.endpoint_id} AND deleted_at IS NULL AND enabled
          RETURNING id, tenant_id
        ), ${operationalEventCtes(
          sql,
          sql`SELECT d.tenant_id, ${EndpointDisabled}::text AS type,
                     json_build_object('endpointId', d.id, 'reason', 'gone') AS data, d.id AS about_endpoint
              FROM disabled d`
        )}
        SELECT ${operationalQueued(sql)} AS operational_queued`
      yield* sql`
        UPDATE deliveries SET status = 'cancelled', locked_until = NULL, locked_by = NULL,
          last_error = 'cancelled: the endpoint answered 410 Gone and was disabled', updated_at = now()
        WHERE endpoint_id = ${completion.row.endpoint_id} AND status = 'pending'`
      return state
    }).pipe(sql.withTransaction)

  /**
   * The endpoint paused (its row: no claim takes its deliveries before then; a pause already longer stays), and this
   * delivery's lease given back, its place in the queue unchanged. One row each, however long the endpoint's backlog.
   */
  const defer = (row: ClaimedRow, wait: Duration.Duration) => {
    const until = sql`now() + make_interval(secs => ${Duration.toMillis(wait) / 1000})`
    return Effect.asVoid(sql`
      WITH paused AS (
        UPDATE endpoints SET paused_until = GREATEST(paused_until, ${until})
        WHERE id = ${row.endpoint_id}
        RETURNING id
      )
      UPDATE deliveries SET locked_until = NULL, locked_by = NULL, updated_at = now()
      WHERE id = ${row.id} AND locked_by = ${workerId} AND status = 'pending'`)
  }

  const cancel = (row: ClaimedRow, lastError: string) =>
    Effect.asVoid(sql`
      UPDATE deliveries SET status = 'cancelled', locked_until = NULL, locked_by = NULL,
        last_error = ${lastError}, updated_at = now()
      WHERE id = ${row.id} AND locked_by = ${workerId} AND status = 'pending'`)

  const releaseHeld = (ids: ReadonlyArray<string>) =>
    ids.length === 0
      ? Effect.succeed(0)
      : Effect.map(
          sql`
            UPDATE deliveries SET locked_until = NULL, locked_by = NULL, updated_at = now()
            WHERE id = ANY (ARRAY(SELECT json_array_elements_text(${JSON.stringify(ids)}::json)))
              AND locked_by = ${workerId} AND status = 'pending'
            RETURNING id`,
          (rows) => rows.length
        )

  return {
    claim: (request) => claimDue(sql, { ...request, leaseSeconds, workerId }),
    complete,
    completeOne,
    completeGone,
    defer,
    cancel,
    releaseHeld
  }
}
