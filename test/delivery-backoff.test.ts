import { assert, layer } from "@effect/vitest"
import { Duration, Effect, type Random } from "effect"
import { SqlClient } from "effect/sql"
import { fastWorker, publish, settled, tenantWithEndpoint } from "./support/deliveryApi.ts"
import { answer, makeReceiver } from "./support/receiver.ts"
import { testServerWithSql } from "./support/sharedDatabase.ts"

/**
 * Issue 16, item 2: the delay the worker schedules after each failed attempt, exactly. The server draws its jitter
 * from a `Random` that always returns the same fraction, so the full-jitter delay before attempt n is exactly
 * `fraction × min(DELIVERY_BACKOFF_MAX, DELIVERY_BACKOFF_BASE × 2^(n-2))`, rounded to the millisecond. A trigger of
 * this file's own records `next_attempt_at - now()` of every retry the worker schedules, so no state is missed
 * however fast the retries follow each other.
 */

const fraction = 0.37

const fixedRandom: Random.Random = {
  nextDoubleUnsafe: () => fraction,
  nextIntUnsafe: () => Math.floor(fraction * Number.MAX_SAFE_INTEGER)
}

// Base 200 ms, cap 1 s: bounds 200, 400, 800 and 1000 (not 1600) ms before attempts 2 to 5.
const delivery = fastWorker({
  maxAttempts: 5,
  backoffBase: Duration.millis(200),
  backoffMax: Duration.seconds(1),
  pollInterval: Duration.millis(50)
})

/** `fraction` of each bound: what the worker must schedule after attempts 1 to 4. */
const expectedDelays: ReadonlyArray<readonly [attempt: number, delayMs: number]> = [
  [1, 74],
  [2, 148],
  [3, 296],
  [4, 370]
]

/**
 * Records, for every update that counts an attempt and leaves the delivery pending, the retry it scheduled: the
 * worker sets `next_attempt_at = now() + delay` and `updated_at = now()` in one statement, so their difference is
 * the delay, to the microsecond. Idempotent: each test sets it up, so each runs alone or in any order.
 */
const recordScheduledRetries = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`
    CREATE TABLE IF NOT EXISTS test_scheduled_retries (
      delivery_id text NOT NULL, attempt integer NOT NULL, next_attempt_at timestamptz NOT NULL,
      delay_ms double precision NOT NULL)`)
  yield* sql.unsafe(`
    CREATE OR REPLACE FUNCTION test_scheduled_retry() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO test_scheduled_retries VALUES (NEW.id, NEW.attempt_count, NEW.next_attempt_at,
        extract(epoch FROM NEW.next_attempt_at - NEW.updated_at)::float8 * 1000);
      RETURN NEW;
    END $$`)
  yield* sql.unsafe(`
    CREATE OR REPLACE TRIGGER test_scheduled_retry AFTER UPDATE ON deliveries FOR EACH ROW
    WHEN (NEW.attempt_count <> OLD.attempt_count AND NEW.status = 'pending')
    EXECUTE FUNCTION test_scheduled_retry()`)
}).pipe(Effect.orDie)

/** The retries scheduled for a delivery: `[attempt, delay in ms]`, in attempt order. */
const scheduledRetries = (deliveryId: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ readonly attempt: number; readonly delay_ms: number }>`
      SELECT attempt, delay_ms FROM test_scheduled_retries WHERE delivery_id = ${deliveryId} ORDER BY attempt`
    return rows.map((row) => [row.attempt, row.delay_ms] as const)
  }).pipe(Effect.orDie)

/**
 * Attempts that started before the retry scheduled after the previous attempt was due (in ms; the attempt's start is
 * stored to the millisecond).
 */
const attemptsSentEarly = (deliveryId: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    return yield* sql<{ readonly attempt: number; readonly early_ms: number }>`
      SELECT a.attempt, extract(epoch FROM date_trunc('milliseconds', s.next_attempt_at) - a.started_at)::float8 * 1000
             AS early_ms
      FROM delivery_attempts a
      JOIN test_scheduled_retries s ON s.delivery_id = a.delivery_id AND s.attempt = a.attempt - 1
      WHERE a.delivery_id = ${deliveryId} AND a.started_at < date_trunc('milliseconds', s.next_attempt_at)`
  }).pipe(Effect.orDie)

layer(testServerWithSql({ config: { delivery }, random: fixedRandom }), { excludeTestServices: true })(
  "the retry schedule, with the jitter's randomness fixed",
  (it) => {
    it.effect("always 500: each retry is scheduled exactly the jittered backoff of its attempt, up to the cap", () =>
      Effect.gen(function* () {
        yield* recordScheduledRetries
        const receiver = yield* makeReceiver((_, __, res) => answer(res, 500))
        const { api } = yield* tenantWithEndpoint(receiver.url)
        const published = yield* publish(api)
        const row = yield* settled(api, published.event.id)
        assert.strictEqual(row.status, "failed")
        assert.strictEqual(row.attemptCount, 5)
        // 0.37 × 200, 400, 800 ms, then 0.37 × 1 s (the cap, not 1.6 s); none after the last attempt.
        assert.deepStrictEqual(yield* scheduledRetries(row.id), expectedDelays)
        assert.deepStrictEqual(yield* attemptsSentEarly(row.id), [], "no retry is sent before it is due")
      })
    )

    it.effect("Retry-After: 3600 with DELIVERY_BACKOFF_MAX = 1 s: the retry is scheduled exactly 1 s later", () =>
      Effect.gen(function* () {
        yield* recordScheduledRetries
        const receiver = yield* makeReceiver((i, _, res) =>
          i === 0 ? answer(res, 429, { "retry-after": "3600" }) : answer(res, 204)
        )
        const { api } = yield* tenantWithEndpoint(receiver.url)
        const published = yield* publish(api)
        const row = yield* settled(api, published.event.id)
        assert.strictEqual(row.status, "succeeded")
        assert.strictEqual(row.attemptCount, 2)
        assert.deepStrictEqual(yield* scheduledRetries(row.id), [[1, 1000]])
        assert.deepStrictEqual(yield* attemptsSentEarly(row.id), [])
      })
    )

    it.effect("Retry-After below the backoff (0 s): the backoff is the floor", () =>
      Effect.gen(function* () {
        yield* recordScheduledRetries
        const receiver = yield* makeReceiver((i, _, res) =>
          i === 0 ? answer(res, 503, { "retry-after": "0" }) : answer(res, 204)
        )
        const { api } = yield* tenantWithEndpoint(receiver.url)
        const published = yield* publish(api)
        const row = yield* settled(api, published.event.id)
        assert.strictEqual(row.status, "succeeded")
        assert.deepStrictEqual(yield* scheduledRetries(row.id), [[1, 74]])
        assert.deepStrictEqual(yield* attemptsSentEarly(row.id), [])
      })
    )
  }
)
