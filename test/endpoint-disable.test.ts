import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { disabledEndpointError } from "../src/domain/Delivery.ts"
import { insertDueBacklog } from "./support/backlog.ts"
import { fastWorker, publish, succeeded, tenantWithEndpoint } from "./support/deliveryApi.ts"
import { answer, makeReceiver } from "./support/receiver.ts"
import { testServerWithSql } from "./support/sharedDatabase.ts"
import { TestServer } from "./support/testServer.ts"

/**
 * Disabling an endpoint (PATCH `enabled: false`) cancels everything still pending for it in the same statement,
 * however long its backlog: the worker never claims those deliveries one by one to cancel them. Enabling it again
 * sends new events; the cancelled ones stay cancelled.
 */

const backlog = 5_000

layer(testServerWithSql({ config: { delivery: fastWorker() } }), { excludeTestServices: true })(
  "disabling an endpoint",
  (it) => {
    it.effect(
      `cancels its ${backlog.toLocaleString("en")} pending deliveries at once; enabled again, it receives`,
      () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          // A receiver that never answers: the worker keeps a few deliveries in flight, the rest wait.
          const receiver = yield* makeReceiver(() => undefined)
          const { api, tenantId, endpointId } = yield* tenantWithEndpoint(receiver.url)
          yield* insertDueBacklog(sql, { tenantId, events: backlog, endpointId })

          const patched = yield* api.endpoints.update({ params: { id: endpointId }, payload: { enabled: false } })
          assert.isFalse(patched.enabled)
          // By the time the PATCH answers, nothing of the endpoint is pending, in flight included.
          const states = yield* sql<{
            readonly status: string
            readonly last_error: string | null
            readonly n: number
          }>`
          SELECT status, last_error, count(*)::int AS n FROM deliveries WHERE endpoint_id = ${endpointId}
          GROUP BY 1, 2`
          assert.deepStrictEqual(states, [{ status: "cancelled", last_error: disabledEndpointError, n: backlog }])
          // Logged, with how many were cancelled (README "Webhook delivery").
          const { logs } = yield* TestServer
          const line = logs
            .map((entry) => JSON.parse(entry) as Record<string, unknown>)
            .find(
              (e) =>
                e.message === "endpoint disabled: its pending deliveries are cancelled" && e.endpointId === endpointId
            )
          assert.strictEqual(line?.deliveriesCancelled, backlog)

          // Enabled again (at another receiver): new events go out; the cancelled backlog is not sent.
          const healthy = yield* makeReceiver((_, __, res) => answer(res, 204))
          yield* api.endpoints.update({ params: { id: endpointId }, payload: { enabled: true, url: healthy.url } })
          const { event } = yield* publish(api)
          yield* succeeded(api, event.id)
          assert.deepStrictEqual(
            healthy.requests.map((r) => r.headers["webhook-id"]),
            [event.id]
          )
          const [left] = yield* sql<{ readonly n: number }>`
          SELECT count(*)::int AS n FROM deliveries WHERE endpoint_id = ${endpointId} AND status = 'cancelled'`
          assert.strictEqual(left?.n, backlog)
        }).pipe(Effect.orDie)
    )

    it.effect("a PATCH that leaves `enabled` alone cancels nothing", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const receiver = yield* makeReceiver(() => undefined)
        const { api, tenantId, endpointId } = yield* tenantWithEndpoint(receiver.url)
        yield* insertDueBacklog(sql, { tenantId, events: 50, endpointId })
        yield* api.endpoints.update({ params: { id: endpointId }, payload: { description: "renamed" } })
        const [cancelled] = yield* sql<{ readonly n: number }>`
          SELECT count(*)::int AS n FROM deliveries WHERE endpoint_id = ${endpointId} AND status = 'cancelled'`
        assert.strictEqual(cancelled?.n, 0)
      }).pipe(Effect.orDie)
    )
  }
)
