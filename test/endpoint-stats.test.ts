import { assert, layer } from "@effect/vitest"
import { Duration, Effect, Schema } from "effect"
import { SqlClient } from "effect/sql"
import type { AttemptOutcome } from "../src/domain/Delivery.ts"
import { EndpointStats } from "../src/domain/EndpointStats.ts"
import { insertDelivery } from "./support/backlog.ts"
import { fastWorker, publish, tenantWithEndpoint } from "./support/deliveryApi.ts"
import { createTenant, request, type WireResponse } from "./support/http.ts"
import { poll } from "./support/poll.ts"
import { expectProblem } from "./support/problems.ts"
import { answer, makeReceiver } from "./support/receiver.ts"
import { testServerWithSql } from "./support/sharedDatabase.ts"

/**
 * `GET /v1/endpoints/{id}/stats` (issue 19) against attempts whose outcomes, durations and times the test wrote itself
 * (straight into the tables: the worker is off), so every number is known: counts by outcome, success rate, p50/p99
 * as PostgreSQL's `percentile_cont` interpolates them, the latest success and failure over all time; the window; the
 * circuit as the worker left it; tenant isolation, deleted endpoints and bad `since` values.
 */

const minutes = (n: number) => n * 60_000

/** An attempt to write: its outcome, duration and how long before the test's `base` time it started. */
interface KnownAttempt {
  readonly outcome: AttemptOutcome
  readonly durationMs: number
  readonly minutesAgo: number
}

/** `attempts` on a delivery of their own (numbered 1..n), to `endpoint`, started relative to `base`. */
const insertAttempts = (
  endpoint: { readonly tenant_id: string; readonly endpoint_id: string },
  base: number,
  attempts: ReadonlyArray<KnownAttempt>
) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const [delivery] = yield* insertDelivery(sql, endpoint, { type: "stats.known" })
    if (delivery === undefined) return yield* Effect.die(new Error("no delivery inserted"))
    // Settled (not pending): no worker could ever pick it up.
    yield* sql`UPDATE deliveries SET status = 'failed' WHERE id = ${delivery.id}`
    yield* Effect.forEach(
      attempts,
      (a, i) => sql`
        INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, outcome, status_code)
        VALUES (${delivery.id}, ${i + 1}, ${new Date(base - minutes(a.minutesAgo)).toISOString()}::timestamptz,
                ${a.durationMs}, ${a.outcome},
                ${a.outcome === "succeeded" ? 200 : a.outcome === "failed" ? 500 : a.outcome === "gone" ? 410 : null})`,
      { discard: true }
    )
  }).pipe(Effect.orDie)

const statsOf = (apiKey: string, endpointId: string, since?: string) =>
  request(`/v1/endpoints/${endpointId}/stats${since === undefined ? "" : `?since=${encodeURIComponent(since)}`}`, {
    bearer: apiKey
  })

/** A second endpoint of the tenant `apiKey` names; its id. */
const secondEndpoint = (apiKey: string) =>
  Effect.map(
    request("/v1/endpoints", { bearer: apiKey, json: { url: "http://127.0.0.1:9999/second" } }),
    (response) => {
      assert.strictEqual(response.status, 201, response.text)
      return (JSON.parse(response.text) as { readonly id: string }).id
    }
  )

/** A 200 whose body the contract's schema decodes. */
const expectStats = (response: WireResponse): EndpointStats => {
  assert.strictEqual(response.status, 200, response.text)
  assert.match(response.headers.get("content-type") ?? "", /^application\/json/)
  return Schema.decodeUnknownSync(EndpointStats)(JSON.parse(response.text))
}

/** `percentile_cont(fraction)` over `values`: linear interpolation between the closest ranks (PostgreSQL's definition). */
const percentileCont = (values: ReadonlyArray<number>, fraction: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const position = fraction * (sorted.length - 1)
  const below = sorted[Math.floor(position)] ?? Number.NaN
  const above = sorted[Math.ceil(position)] ?? Number.NaN
  return below + (position - Math.floor(position)) * (above - below)
}

const counts = (attempts: ReadonlyArray<KnownAttempt>) => {
  const of = (outcome: AttemptOutcome) => attempts.filter((a) => a.outcome === outcome).length
  return {
    total: attempts.length,
    succeeded: of("succeeded"),
    failed: of("failed"),
    gone: of("gone"),
    timeout: of("timeout"),
    network_error: of("network_error"),
    blocked: of("blocked")
  }
}

/** The hour before `base`: every outcome, on two deliveries. */
const lastHour: ReadonlyArray<KnownAttempt> = [
  { outcome: "failed", durationMs: 100, minutesAgo: 5 },
  { outcome: "succeeded", durationMs: 10, minutesAgo: 10 },
  { outcome: "gone", durationMs: 200, minutesAgo: 15 },
  { outcome: "succeeded", durationMs: 20, minutesAgo: 20 },
  { outcome: "timeout", durationMs: 5000, minutesAgo: 25 },
  { outcome: "succeeded", durationMs: 30, minutesAgo: 30 },
  { outcome: "network_error", durationMs: 3, minutesAgo: 35 },
  { outcome: "succeeded", durationMs: 40, minutesAgo: 40 },
  { outcome: "blocked", durationMs: 0, minutesAgo: 45 }
]
/** Older: inside the default 24 hours, outside a one-hour window. */
const earlier: ReadonlyArray<KnownAttempt> = [
  { outcome: "succeeded", durationMs: 999, minutesAgo: 120 },
  { outcome: "failed", durationMs: 7, minutesAgo: 180 }
]
/** Older than the default window: only the all-time latest times could see them (they are not the latest). */
const lastWeek: ReadonlyArray<KnownAttempt> = [{ outcome: "succeeded", durationMs: 50, minutesAgo: 7 * 24 * 60 }]

layer(testServerWithSql(), { excludeTestServices: true })("GET /v1/endpoints/{id}/stats", (it) => {
  it.effect("known attempts: counts by outcome, success rate, exact p50/p99, latest success and failure", () =>
    Effect.gen(function* () {
      const { apiKey, tenantId, endpointId } = yield* tenantWithEndpoint("http://127.0.0.1:9999/stats")
      const endpoint = { tenant_id: tenantId, endpoint_id: endpointId }
      const base = Date.now() - 1000
      yield* insertAttempts(endpoint, base, lastHour.slice(0, 4))
      yield* insertAttempts(endpoint, base, lastHour.slice(4))
      yield* insertAttempts(endpoint, base, earlier)
      yield* insertAttempts(endpoint, base, lastWeek)
      // Another endpoint of the same tenant: none of its attempts count here.
      const otherId = yield* secondEndpoint(apiKey)
      yield* insertAttempts({ tenant_id: tenantId, endpoint_id: otherId }, base, [
        { outcome: "succeeded", durationMs: 77, minutesAgo: 1 },
        { outcome: "timeout", durationMs: 9999, minutesAgo: 2 }
      ])

      // One hour: exactly `lastHour`.
      const since = new Date(base - minutes(60)).toISOString()
      const before = Date.now()
      const hour = expectStats(yield* statsOf(apiKey, endpointId, since))
      const durations = lastHour.map((a) => a.durationMs)
      assert.strictEqual(hour.endpointId, endpointId)
      assert.strictEqual(hour.since, since)
      assert.isAtLeast(Date.parse(hour.until), before)
      assert.isAtMost(Date.parse(hour.until), Date.now())
      assert.deepStrictEqual(hour.attempts, counts(lastHour))
      assert.deepStrictEqual(hour.attempts, {
        total: 9,
        succeeded: 4,
        failed: 1,
        gone: 1,
        timeout: 1,
        network_error: 1,
        blocked: 1
      })
      assert.strictEqual(hour.successRate, 4 / 9)
      // Sorted: 0 3 10 20 30 40 100 200 5000. p50 is the 5th; p99 is 92% of the way from 200 to 5000.
      assert.strictEqual(hour.durationMs.p50, 30)
      assert.approximately(hour.durationMs.p99 ?? Number.NaN, 4616, 1e-9)
      assert.approximately(hour.durationMs.p99 ?? Number.NaN, percentileCont(durations, 0.99), 1e-9)
      assert.strictEqual(hour.lastSuccessAt, new Date(base - minutes(10)).toISOString())
      assert.strictEqual(hour.lastFailureAt, new Date(base - minutes(5)).toISOString())
      assert.deepStrictEqual(hour.health, { circuit: "closed", openUntil: null })

      // No `since`: the last 24 hours, which take in `earlier` but not `lastWeek`.
      const day = expectStats(yield* statsOf(apiKey, endpointId))
      const inDay = [...lastHour, ...earlier]
      assert.strictEqual(Date.parse(day.until) - Date.parse(day.since), Duration.toMillis(Duration.hours(24)))
      assert.deepStrictEqual(day.attempts, counts(inDay))
      assert.strictEqual(day.successRate, 5 / 11)
      assert.strictEqual(
        day.durationMs.p50,
        percentileCont(
          inDay.map((a) => a.durationMs),
          0.5
        )
      )
      assert.approximately(
        day.durationMs.p99 ?? Number.NaN,
        percentileCont(
          inDay.map((a) => a.durationMs),
          0.99
        ),
        1e-9
      )

      // A week and a day: everything of this endpoint.
      const all = expectStats(yield* statsOf(apiKey, endpointId, new Date(base - minutes(8 * 24 * 60)).toISOString()))
      assert.strictEqual(all.attempts.total, lastHour.length + earlier.length + lastWeek.length)

      // A window with no attempts: zeros and nulls, but the latest success and failure are over all time.
      const empty = expectStats(yield* statsOf(apiKey, endpointId, new Date(base - minutes(2)).toISOString()))
      assert.deepStrictEqual(empty.attempts, counts([]))
      assert.strictEqual(empty.successRate, null)
      assert.deepStrictEqual(empty.durationMs, { p50: null, p99: null })
      assert.strictEqual(empty.lastSuccessAt, hour.lastSuccessAt)
      assert.strictEqual(empty.lastFailureAt, hour.lastFailureAt)

      // The other endpoint: its own two attempts only.
      const other = expectStats(yield* statsOf(apiKey, otherId, since))
      assert.deepStrictEqual(
        other.attempts,
        counts([
          { outcome: "succeeded", durationMs: 77, minutesAgo: 1 },
          { outcome: "timeout", durationMs: 9999, minutesAgo: 2 }
        ])
      )
      assert.strictEqual(other.successRate, 0.5)
      assert.strictEqual(other.durationMs.p50, (77 + 9999) / 2)
    })
  )

  it.effect("an endpoint without attempts: zeros, nulls and a closed circuit", () =>
    Effect.gen(function* () {
      const { apiKey, endpointId } = yield* tenantWithEndpoint("http://127.0.0.1:9999/quiet")
      const stats = expectStats(yield* statsOf(apiKey, endpointId))
      assert.deepStrictEqual(
        { ...stats, since: undefined, until: undefined },
        {
          endpointId,
          since: undefined,
          until: undefined,
          attempts: { total: 0, succeeded: 0, failed: 0, gone: 0, timeout: 0, network_error: 0, blocked: 0 },
          successRate: null,
          durationMs: { p50: null, p99: null },
          lastSuccessAt: null,
          lastFailureAt: null,
          health: { circuit: "closed", openUntil: null }
        }
      )
    })
  )

  it.effect("404 for another tenant's, an unknown, a malformed or a deleted endpoint", () =>
    Effect.gen(function* () {
      const owner = yield* tenantWithEndpoint("http://127.0.0.1:9999/owned")
      yield* insertAttempts({ tenant_id: owner.tenantId, endpoint_id: owner.endpointId }, Date.now(), [
        { outcome: "succeeded", durationMs: 5, minutesAgo: 1 }
      ])
      const stranger = yield* createTenant("Stranger")
      const notFound = (response: WireResponse) =>
        assert.strictEqual(expectProblem(response, 404).detail, "No endpoint with this id.")

      notFound(yield* statsOf(stranger.apiKey, owner.endpointId))
      notFound(yield* statsOf(owner.apiKey, "ep_0000000000000000000000000Z"))
      notFound(yield* statsOf(owner.apiKey, "nope"))
      notFound(yield* statsOf(owner.apiKey, "evt_0000000000000000000000000Z"))
      // The owner still sees its own.
      assert.strictEqual(expectStats(yield* statsOf(owner.apiKey, owner.endpointId)).attempts.total, 1)

      const deleted = yield* request(`/v1/endpoints/${owner.endpointId}`, { method: "DELETE", bearer: owner.apiKey })
      assert.strictEqual(deleted.status, 204, deleted.text)
      notFound(yield* statsOf(owner.apiKey, owner.endpointId))
    })
  )

  it.effect("400 for a `since` that is not a date-time, or in the future", () =>
    Effect.gen(function* () {
      const { apiKey, endpointId } = yield* tenantWithEndpoint("http://127.0.0.1:9999/since")
      for (const since of [
        "yesterday",
        "2026-02-30T00:00:00Z",
        "2026-01-01",
        "1767225600000",
        "",
        "0000-01-01T00:00:00Z"
      ]) {
        expectProblem(yield* statsOf(apiKey, endpointId, since), 400)
      }
      const future = expectProblem(
        yield* statsOf(apiKey, endpointId, new Date(Date.now() + minutes(60)).toISOString()),
        400
      )
      assert.include(String(future.detail), "future")
      // Another tenant's endpoint with a bad `since`: refused before anything is looked up (nothing revealed).
      const stranger = yield* createTenant("Stranger of since")
      expectProblem(yield* statsOf(stranger.apiKey, endpointId, "yesterday"), 400)
    })
  )
})

// The worker on, one attempt per delivery, and a circuit that opens at the first failure for a minute.
const delivery = fastWorker({ maxAttempts: 1 })
const breaker = {
  failureThreshold: 1,
  openBase: Duration.seconds(60),
  openMax: Duration.seconds(60),
  redisPrefix: "codex:circuit:"
}

layer(testServerWithSql({ config: { delivery, breaker } }), { excludeTestServices: true })(
  "stats of an endpoint the worker sends to",
  (it) => {
    it.effect("a failed attempt recorded by the worker opens the circuit: stats show both", () =>
      Effect.gen(function* () {
        const dead = yield* makeReceiver((_, __, res) => answer(res, 500))
        const { api, apiKey, endpointId } = yield* tenantWithEndpoint(dead.url)
        const before = Date.now()
        yield* publish(api)
        const stats = yield* poll(
          "the endpoint's circuit to open",
          Effect.map(statsOf(apiKey, endpointId), expectStats),
          (s) => s.health.circuit === "open" && s.attempts.total === 1
        )
        assert.deepStrictEqual(stats.attempts, {
          total: 1,
          succeeded: 0,
          failed: 1,
          gone: 0,
          timeout: 0,
          network_error: 0,
          blocked: 0
        })
        assert.strictEqual(stats.successRate, 0)
        assert.strictEqual(stats.durationMs.p50, stats.durationMs.p99)
        assert.isAtLeast(stats.durationMs.p50 ?? -1, 0)
        assert.strictEqual(stats.lastSuccessAt, null)
        assert.isAtLeast(Date.parse(stats.lastFailureAt ?? ""), before - 1000)
        // Open for BREAKER_OPEN_BASE (60 s, give or take the ±20% jitter) from the failure.
        const openUntil = Date.parse(stats.health.openUntil ?? "")
        assert.isAbove(openUntil, Date.now() + 30_000)
        assert.isAtMost(openUntil, Date.now() + 75_000)
      })
    )
  }
)
