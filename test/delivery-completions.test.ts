import type { ServerResponse } from "node:http"
import { assert, layer } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { SqlClient } from "effect/sql"
import { type Api, fastWorker, publish, succeeded, tenantWithEndpoint } from "./support/deliveryApi.ts"
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
})
