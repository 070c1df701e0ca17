import type { ServerResponse } from "node:http"
import { assert, layer } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { SqlClient } from "effect/sql"
import { fastWorker, publish, succeeded, tenantWithEndpoint } from "./support/deliveryApi.ts"
import { poll } from "./support/poll.ts"
import { answer, makeReceiver } from "./support/receiver.ts"
import { testServerWithSql } from "./support/sharedDatabase.ts"

/**
 * Claim-ahead (issue 17): the worker leases up to its concurrency more deliveries than it is sending, so a slot that
 * frees starts the next one without waiting for a claim. A tenant may hold twice its cap (sent or ready), but sends
 * at most its cap; what is ready for it waits for one of its sends to end, and is given back to the queue after
 * 2 seconds (its sends are hanging: its lease must not run out, and another worker may have room for it).
 */

interface Lease {
  readonly locked_by: string | null
  readonly locked_until: Date | null
}

layer(
  testServerWithSql({
    config: { delivery: fastWorker({ concurrency: 4, tenantConcurrency: 1, timeout: Duration.seconds(30) }) }
  }),
  { excludeTestServices: true }
)("claim-ahead", (it) => {
  it.effect(
    "a tenant at its cap: its next delivery is leased ahead, never sent before a send ends, given back within 2 s while it waits",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const held: Array<ServerResponse> = []
        const receiver = yield* makeReceiver((_, __, res) => {
          held.push(res)
        })
        const { api } = yield* tenantWithEndpoint(receiver.url)
        const first = yield* publish(api, "order.created", { n: 1 })
        yield* poll(
          "the first send",
          Effect.sync(() => held.length),
          (n) => n === 1
        )
        const second = yield* publish(api, "order.created", { n: 2 })
        const lease = sql<Lease>`
          SELECT d.locked_by, d.locked_until FROM deliveries d WHERE d.event_id = ${second.event.id}`.pipe(
          Effect.map((rows) => rows[0] ?? { locked_by: null, locked_until: null })
        )

        // Claimed ahead: leased here while the tenant's one send is in flight.
        const ahead = yield* poll("the second delivery leased ahead", lease, (row) => row.locked_by !== null)
        // Given back and taken again while it waits (2 s; the poll allows 6): its lease is renewed, not left to run out.
        yield* poll(
          "the ready delivery given back and leased again",
          lease,
          (row) =>
            row.locked_until === null || row.locked_until.getTime() !== (ahead.locked_until?.getTime() ?? Number.NaN),
          { timeoutMs: 6_000 }
        )
        assert.strictEqual(held.length, 1, "the tenant's cap: one send at a time, the ready one never sent meanwhile")

        // The send ends: the next one starts.
        for (const res of held.splice(0)) answer(res, 204)
        yield* poll(
          "the second send",
          Effect.sync(() => held.length),
          (n) => n === 1
        )
        for (const res of held.splice(0)) answer(res, 204)
        yield* succeeded(api, first.event.id)
        yield* succeeded(api, second.event.id)
        assert.strictEqual(receiver.requests.length, 2, "each delivery sent once")
      }).pipe(Effect.orDie),
    { timeout: 30_000 }
  )
})
