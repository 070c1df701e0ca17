import type { ServerResponse } from "node:http"
import { assert, layer } from "@effect/vitest"
import { Deferred, Duration, Effect } from "effect"
import { SqlClient } from "effect/sql"
import { disabledEndpointError } from "../src/domain/Delivery.ts"
import { type Api, deliveryTo, fastWorker, publish, succeeded, tenantWithEndpoint } from "./support/deliveryApi.ts"
import { poll } from "./support/poll.ts"
import { answer, makeReceiver } from "./support/receiver.ts"
import { testServerWithSql } from "./support/sharedDatabase.ts"

/**
 * Finished attempts are group-committed (layers/DeliveryCompletions.ts): those that finish while a record statement
 * runs share the next one. A receiver that holds every request until all have arrived, then answers them at once,
 * makes a burst of completions; rows written by one statement share its transaction id (`xmin`).
 */

const burst = 32
const delivery = fastWorker({ concurrency: burst, endpointConcurrency: burst, timeout: Duration.seconds(30) })

/** A receiver holding every request until `burst` have arrived, then answering all of them; `body` per request. */
const burstReceiver = (body: (requestBody: string) => string) =>
  Effect.gen(function* () {
    const held: Array<{ readonly res: ServerResponse; readonly body: string }> = []
    return yield* makeReceiver((_, request, res) => {
      held.push({ res, body: request.body })
      if (held.length === burst) for (const h of held.splice(0)) answer(h.res, 200, {}, body(h.body))
    })
  })

const publishBurst = (api: Api) =>
  Effect.forEach(
    Array.from({ length: burst }, (_, i) => i),
    (i) => publish(api, "order.created", { i }),
    { concurrency: 8 }
  )

layer(testServerWithSql({ config: { delivery } }), { excludeTestServices: true })("group-committed attempts", (it) => {
  it.effect(`${burst} attempts finishing together are recorded in fewer statements than attempts`, () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const receiver = yield* burstReceiver(() => "ok")
      const { api, tenantId } = yield* tenantWithEndpoint(receiver.url)
      const published = yield* publishBurst(api)
      for (const { event } of published) yield* succeeded(api, event.id)

      const [row] = yield* sql<{ readonly attempts: number; readonly statements: number }>`
        SELECT count(*)::int AS attempts, count(DISTINCT a.xmin::text)::int AS statements
        FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.tenant_id = ${tenantId}`
      assert.strictEqual(row?.attempts, burst, "one attempt per delivery")
      assert.strictEqual(receiver.requests.length, burst, "none sent twice")
      assert.isAtMost(row?.statements ?? burst, burst / 2, `attempts recorded in ${row?.statements} statements`)
      // Each delivery's own attempt: the batch matched rows by id.
      const attempts = yield* sql<{ readonly event_id: string; readonly attempt: number; readonly excerpt: string }>`
        SELECT d.event_id, a.attempt, a.response_excerpt AS excerpt
        FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.tenant_id = ${tenantId}`
      assert.sameMembers(
        attempts.map((a) => a.event_id),
        published.map((p) => p.event.id)
      )
      for (const attempt of attempts) assert.deepStrictEqual([attempt.attempt, attempt.excerpt], [1, "ok"])
    }).pipe(Effect.orDie)
  )

  it.effect("a record the database refuses does not hold back the rest of its batch", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      // Whatever a receiver can send, this stands for a record the table refuses.
      yield* sql`ALTER TABLE delivery_attempts ADD CONSTRAINT test_refuses_poison_batch
        CHECK (response_excerpt IS NULL OR response_excerpt NOT LIKE '%poison%')`
      const receiver = yield* burstReceiver((body) => (body.includes(`"i":0}`) ? "poison" : "ok"))
      const { api } = yield* tenantWithEndpoint(receiver.url)
      const published = yield* publishBurst(api)
      const settled = yield* Effect.forEach(published, ({ event }) => succeeded(api, event.id)).pipe(
        Effect.ensuring(Effect.orDie(sql`ALTER TABLE delivery_attempts DROP CONSTRAINT test_refuses_poison_batch`))
      )
      assert.strictEqual(receiver.requests.length, burst, "none sent twice")
      const attempts = yield* Effect.forEach(settled, (row) =>
        poll(
          "the attempt",
          api.deliveries.get({ params: { id: row.id } }).pipe(Effect.orDie),
          (d) => d.attempts.length === 1
        )
      )
      const excerpts = attempts.map((d) => d.attempts[0]?.responseExcerpt ?? null)
      assert.strictEqual(excerpts.filter((e) => e === "ok").length, burst - 1, "the others as received")
      const refused = attempts.find((d) => d.attempts[0]?.responseExcerpt === null)
      assert.include(refused?.attempts[0]?.error ?? "", "could not be stored as received")
      assert.strictEqual(refused?.status, "succeeded")
    }).pipe(Effect.orDie)
  )

  it.effect(
    "a cancel committing while the worker records its send: the attempt and its count land in one statement",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const release = yield* Deferred.make<void>()
        const receiver = yield* makeReceiver(async (_, __, res) => {
          await Effect.runPromise(Deferred.await(release))
          answer(res, 200, {}, "thanks")
        })
        const { api, endpointId } = yield* tenantWithEndpoint(receiver.url)
        const event = yield* publish(api, "order.created", { n: 1 })
        yield* poll(
          "the send in flight",
          Effect.sync(() => receiver.requests.length),
          (n) => n === 1
        )
        const { id } = yield* deliveryTo(api, event.event.id, endpointId)
        // What disabling the endpoint writes (EndpointsLive), its transaction held open while the worker records the
        // answer: the record statement starts (its snapshot sees the delivery pending, leased) and waits for the row.
        yield* Effect.gen(function* () {
          yield* sql`UPDATE endpoints SET enabled = false, updated_at = now() WHERE id = ${endpointId}`
          yield* sql`
            UPDATE deliveries SET status = 'cancelled', locked_until = NULL, locked_by = NULL,
              last_error = ${disabledEndpointError}, updated_at = now()
            WHERE endpoint_id = ${endpointId} AND status = 'pending'`
          yield* Deferred.succeed(release, undefined)
          yield* poll(
            "the worker's record statement waiting for the cancel",
            // Inside a transaction pg_stat_activity is read once and kept: each read asks for a fresh one.
            sql`SELECT pg_stat_clear_snapshot()`.pipe(
              Effect.andThen(sql<{ readonly n: number }>`
                SELECT count(*)::int AS n FROM pg_stat_activity
                WHERE datname = current_database() AND wait_event_type = 'Lock'
                  AND query LIKE '%INSERT INTO delivery_attempts%'`)
            ),
            (rows) => (rows[0]?.n ?? 0) > 0
          )
        }).pipe(sql.withTransaction)
        const recorded = yield* poll(
          "the attempt recorded",
          api.deliveries.get({ params: { id } }).pipe(Effect.orDie),
          (d) => d.attempts.length === 1
        )
        // Read as soon as the attempt shows: its count and answer are there with it, the delivery still cancelled.
        assert.deepStrictEqual(
          [recorded.status, recorded.lastError, recorded.attemptCount, recorded.lastStatus],
          ["cancelled", disabledEndpointError, 1, 200],
          JSON.stringify(recorded)
        )
        assert.strictEqual(recorded.attempts[0]?.responseExcerpt, "thanks")
        // Written by one transaction: no reader could see the attempt without its count.
        const [writers] = yield* sql<{ readonly delivery: string; readonly attempt: string }>`
          SELECT d.xmin::text AS delivery, a.xmin::text AS attempt
          FROM deliveries d JOIN delivery_attempts a ON a.delivery_id = d.id WHERE d.id = ${id}`
        assert.strictEqual(writers?.attempt, writers?.delivery, "the attempt and the delivery's count, one statement")
      })
  )
})
