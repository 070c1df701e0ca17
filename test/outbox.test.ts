import { assert, describe, it, layer } from "@effect/vitest"
import { Arbitrary, Effect, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { matchesEventType } from "../src/domain/EventTypeFilter.ts"
import { publish } from "./support/deliveryApi.ts"
import { apiClient, createTenant, request } from "./support/http.ts"
import { expectProblem } from "./support/problems.ts"
import { testServerWithSql } from "./support/sharedDatabase.ts"
import { countTenantRows } from "./support/tenantRows.ts"
import { TestServer } from "./support/testServer.ts"

/**
 * The outbox: publishing an event stores it together with one pending delivery per enabled, matching endpoint of
 * the same tenant, atomically. The test reads the rows straight from the server's database (on PGlite through a
 * second connection to the same embedded instance, see support/sharedDatabase.ts), only while no request runs.
 */

interface DeliveryRow {
  readonly id: string
  readonly tenant_id: string
  readonly event_id: string
  readonly endpoint_id: string
  readonly status: string
  readonly attempt_count: number
  readonly locked_until: Date | null
  readonly last_status: number | null
  readonly last_error: string | null
  /** next_attempt_at equals the event's created_at: both are now() of the one publishing transaction. */
  readonly same_instant_as_event: boolean
  /** Seconds between next_attempt_at and the database's now() when read. */
  readonly age_seconds: number
}

const deliveriesOf = (eventId: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    return yield* sql<DeliveryRow>`
      SELECT d.id, d.tenant_id, d.event_id, d.endpoint_id, d.status, d.attempt_count, d.locked_until,
             d.last_status, d.last_error, (d.next_attempt_at = e.created_at) AS same_instant_as_event,
             extract(epoch FROM now() - d.next_attempt_at)::float8 AS age_seconds
      FROM deliveries d JOIN events e ON e.id = d.event_id
      WHERE d.event_id = ${eventId}
      ORDER BY d.endpoint_id`
  })

/** Publishes as the tenant of `apiKey`, through the typed client derived from the contract. */
const publishAs = (apiKey: string, type: string, data: Record<string, Schema.Json> = { n: 1 }) =>
  Effect.flatMap(apiClient(apiKey), (api) => publish(api, type, data))

const createEndpoint = (apiKey: string, body: { readonly eventTypes: ReadonlyArray<string>; enabled?: boolean }) =>
  Effect.gen(function* () {
    const { baseUrl } = yield* TestServer
    const api = yield* apiClient(apiKey)
    // Never called: there is no delivery engine here.
    const created = yield* api.endpoints.create({ payload: { url: `${baseUrl}/receiver`, ...body } })
    return created.id
  })

const idPattern = (prefix: string) => new RegExp(`^${prefix}_[0-9A-HJKMNP-TV-Z]{26}$`)

describe("matchesEventType", () => {
  it.each([
    [[], "anything.at.all", true],
    [["order.created"], "order.created", true],
    [["order.created"], "order.created.v2", false],
    [["order.created"], "Order.created", false],
    [["order.*"], "order.created", true],
    [["order.*"], "order.item.added", true],
    [["order.*"], "order.", true],
    [["order.*"], "order", false],
    [["order.*"], "orders.x", false],
    [["order.*"], "xorder.created", false],
    [["order.item.*"], "order.item.added", true],
    [["order.item.*"], "order.created", false],
    [["invoice.paid", "order.*"], "order.created", true],
    [["invoice.paid", "order.*"], "invoice.paid", true],
    [["invoice.paid", "order.*"], "invoice.sent", false]
  ] as const)("%j matches %s: %s", (filter, type, expected) => {
    assert.strictEqual(matchesEventType(filter, type), expected)
  })
})

// Event types and filters built from a few overlapping words, so that matches and near misses are both common.
const word = Arbitrary.schema(Schema.Literals(["order", "orders", "item", "created", "Order", "a", "a-b", "_"]))
const eventTypeArb = Arbitrary.map(
  Arbitrary.all([Arbitrary.array(word, { minLength: 1, maxLength: 4 }), Arbitrary.schema(Schema.Boolean)]),
  ([words, trailingDot]) => `${words.join(".")}${trailingDot && words.length === 1 ? "." : ""}`
)
const patternArb = Arbitrary.map(
  Arbitrary.all([Arbitrary.array(word, { minLength: 1, maxLength: 3 }), Arbitrary.schema(Schema.Boolean)]),
  ([words, wildcard]) => (wildcard ? `${words.join(".")}.*` : words.join("."))
)
const endpointsArb = Arbitrary.array(
  Arbitrary.all({
    eventTypes: Arbitrary.array(patternArb, { maxLength: 3 }),
    enabled: Arbitrary.map(
      Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 4 }))),
      (n) => n > 0
    )
  }),
  { minLength: 1, maxLength: 5 }
)

layer(testServerWithSql(), { excludeTestServices: true })("the outbox", (it) => {
  it.effect("3 matching endpoints out of 5 → exactly 3 pending deliveries, in the publishing transaction", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Outbox A")
      const all = yield* createEndpoint(tenant.apiKey, { eventTypes: [] })
      const exact = yield* createEndpoint(tenant.apiKey, { eventTypes: ["order.created"] })
      const wildcard = yield* createEndpoint(tenant.apiKey, { eventTypes: ["order.*"] })
      const other = yield* createEndpoint(tenant.apiKey, { eventTypes: ["invoice.paid"] })
      const disabled = yield* createEndpoint(tenant.apiKey, { eventTypes: [], enabled: false })
      // Another tenant with an endpoint that takes everything: it must never see tenant A's events.
      const neighbour = yield* createTenant("Outbox B")
      const neighbourEndpoint = yield* createEndpoint(neighbour.apiKey, { eventTypes: [] })

      const published = yield* publishAs(tenant.apiKey, "order.created", { orderId: "o_1" })
      assert.strictEqual(published.deliveriesQueued, 3)
      assert.match(published.event.id, idPattern("evt"))

      const rows = yield* deliveriesOf(published.event.id)
      assert.strictEqual(rows.length, 3)
      assert.deepStrictEqual(rows.map((row) => row.endpoint_id).sort(), [all, exact, wildcard].sort())
      for (const row of rows) {
        assert.match(row.id, idPattern("dlv"))
        assert.strictEqual(row.tenant_id, tenant.tenantId)
        assert.strictEqual(row.event_id, published.event.id)
        assert.strictEqual(row.status, "pending")
        assert.strictEqual(row.attempt_count, 0)
        assert.isNull(row.locked_until)
        assert.isNull(row.last_status)
        assert.isNull(row.last_error)
        assert.isTrue(row.same_instant_as_event, "next_attempt_at is the publishing transaction's now()")
        assert.isAtLeast(row.age_seconds, 0)
        assert.isBelow(row.age_seconds, 30, "next_attempt_at ≈ now")
      }
      assert.notInclude(
        rows.map((row) => row.endpoint_id),
        other
      )
      assert.notInclude(
        rows.map((row) => row.endpoint_id),
        disabled
      )
      assert.strictEqual(yield* countTenantRows("deliveries", neighbour.tenantId), 0)

      // The neighbour's own event reaches only the neighbour's endpoint.
      const theirs = yield* publishAs(neighbour.apiKey, "order.created")
      assert.strictEqual(theirs.deliveriesQueued, 1)
      assert.deepStrictEqual(
        (yield* deliveriesOf(theirs.event.id)).map((row) => [row.endpoint_id, row.tenant_id]),
        [[neighbourEndpoint, neighbour.tenantId]]
      )
      assert.strictEqual(yield* countTenantRows("deliveries", tenant.tenantId), 3)
    })
  )

  it.effect("wildcards through the API: order.* takes order.created and order.item.added, not order or orders.x", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Outbox wildcards")
      const all = yield* createEndpoint(tenant.apiKey, { eventTypes: [] })
      const exact = yield* createEndpoint(tenant.apiKey, { eventTypes: ["order.created"] })
      const wildcard = yield* createEndpoint(tenant.apiKey, { eventTypes: ["order.*"] })
      const invoice = yield* createEndpoint(tenant.apiKey, { eventTypes: ["invoice.paid"] })
      const both = yield* createEndpoint(tenant.apiKey, { eventTypes: ["order.*", "order.created", "invoice.paid"] })
      const expected: ReadonlyArray<readonly [string, ReadonlyArray<string>]> = [
        ["order.created", [all, exact, wildcard, both]],
        ["order.item.added", [all, wildcard, both]],
        ["order", [all]],
        ["orders.x", [all]],
        ["Order.created", [all]],
        ["invoice.paid", [all, invoice, both]]
      ]
      for (const [type, endpoints] of expected) {
        const published = yield* publishAs(tenant.apiKey, type)
        assert.strictEqual(published.deliveriesQueued, endpoints.length, type)
        const rows = yield* deliveriesOf(published.event.id)
        assert.deepStrictEqual(rows.map((row) => row.endpoint_id).sort(), [...endpoints].sort(), type)
      }
    })
  )

  it.effect("no matching endpoint: the event is stored with 0 deliveries", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Outbox none")
      yield* createEndpoint(tenant.apiKey, { eventTypes: ["invoice.*"] })
      yield* createEndpoint(tenant.apiKey, { eventTypes: [], enabled: false })
      const published = yield* publishAs(tenant.apiKey, "order.created")
      assert.strictEqual(published.deliveriesQueued, 0)
      assert.strictEqual(yield* countTenantRows("events", tenant.tenantId), 1)
      assert.strictEqual(yield* countTenantRows("deliveries", tenant.tenantId), 0)
    })
  )

  it.effect("disabling and re-enabling an endpoint takes effect for the next event", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Outbox toggles")
      const endpoint = yield* createEndpoint(tenant.apiKey, { eventTypes: ["order.*"] })
      const api = yield* apiClient(tenant.apiKey)
      const patch = (payload: { readonly enabled: boolean; eventTypes?: ReadonlyArray<string> }) =>
        api.endpoints.update({ params: { id: endpoint }, payload })
      yield* patch({ enabled: false })
      assert.strictEqual((yield* publishAs(tenant.apiKey, "order.created")).deliveriesQueued, 0)
      yield* patch({ enabled: true, eventTypes: ["invoice.paid"] })
      assert.strictEqual((yield* publishAs(tenant.apiKey, "order.created")).deliveriesQueued, 0)
      assert.strictEqual((yield* publishAs(tenant.apiKey, "invoice.paid")).deliveriesQueued, 1)
    })
  )

  it.effect.prop(
    "the SQL filter agrees with matchesEventType, and deliveries stay within the publishing tenant",
    { endpoints: endpointsArb, type: eventTypeArb },
    ({ endpoints, type }) =>
      Effect.gen(function* () {
        const tenant = yield* createTenant("Outbox property")
        const created: Array<{ readonly id: string; readonly expected: boolean }> = []
        for (const endpoint of endpoints) {
          const id = yield* createEndpoint(tenant.apiKey, endpoint)
          created.push({ id, expected: endpoint.enabled && matchesEventType(endpoint.eventTypes, type) })
        }
        const published = yield* publishAs(tenant.apiKey, type)
        const expected = created.filter((endpoint) => endpoint.expected).map((endpoint) => endpoint.id)
        const rows = yield* deliveriesOf(published.event.id)
        assert.deepStrictEqual(
          rows.map((row) => row.endpoint_id).sort(),
          expected.sort(),
          JSON.stringify({ type, endpoints })
        )
        assert.strictEqual(published.deliveriesQueued, expected.length)
        for (const row of rows) assert.strictEqual(row.tenant_id, tenant.tenantId)
      }),
    { timeout: 120_000, arbitrary: { runs: 100 } }
  )

  it.effect("across everything published in this file, no delivery crosses a tenant boundary", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      // Data of its own, so that the check never runs on an empty table (this test alone, or first): two tenants
      // that both take everything, each publishing once. Whatever the file's other tests published is checked too.
      const tenants = [yield* createTenant("Outbox boundary A"), yield* createTenant("Outbox boundary B")]
      for (const tenant of tenants) yield* createEndpoint(tenant.apiKey, { eventTypes: [] })
      for (const tenant of tenants)
        assert.strictEqual((yield* publishAs(tenant.apiKey, "order.created")).deliveriesQueued, 1)
      const [row] = yield* sql<{ readonly total: number; readonly crossing: number }>`
        SELECT count(*)::int AS total,
               count(*) FILTER (WHERE d.tenant_id <> e.tenant_id OR d.tenant_id <> ev.tenant_id)::int AS crossing
        FROM deliveries d
        JOIN endpoints e ON e.id = d.endpoint_id
        JOIN events ev ON ev.id = d.event_id`
      assert.isAtLeast(row?.total ?? 0, 2)
      assert.strictEqual(row?.crossing, 0)
    })
  )

  it.effect("a database failure after the event insert leaves neither the event nor any delivery", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const { logs } = yield* TestServer
      const tenant = yield* createTenant("Outbox atomicity")
      const endpoints = [
        yield* createEndpoint(tenant.apiKey, { eventTypes: [] }),
        yield* createEndpoint(tenant.apiKey, { eventTypes: ["order.*"] })
      ]

      // A real failure inside the publishing statement: every delivery insert raises, at the end of the statement
      // (AFTER ROW triggers fire once all of it ran), i.e. after the event row was written. The message records
      // that the event was there when it failed.
      yield* sql.unsafe(`
        CREATE FUNCTION outbox_test_fail() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'outbox test: injected failure (event % written: %)',
            NEW.event_id, EXISTS (SELECT 1 FROM events WHERE id = NEW.event_id);
        END
        $$`)
      const dropTrigger = Effect.gen(function* () {
        yield* sql.unsafe("DROP TRIGGER IF EXISTS outbox_test_fail ON deliveries")
        yield* sql.unsafe("DROP FUNCTION IF EXISTS outbox_test_fail()")
      }).pipe(Effect.orDie)

      yield* Effect.gen(function* () {
        yield* sql.unsafe(
          "CREATE TRIGGER outbox_test_fail AFTER INSERT ON deliveries FOR EACH ROW EXECUTE FUNCTION outbox_test_fail()"
        )
        const mark = logs.length
        const failed = yield* request("/v1/events", {
          bearer: tenant.apiKey,
          json: { type: "order.created", data: { attempt: 1 } }
        })
        assert.isAtLeast(failed.status, 500, failed.text)
        const problem = expectProblem(failed, 500)
        assert.strictEqual(problem.detail, "An unexpected error occurred.")
        assert.notInclude(failed.text, "outbox test")

        // The failure happened after the event insert (the trigger saw the row), and rolled both back.
        const logged = logs.slice(mark).join("\n")
        assert.match(logged, /outbox test: injected failure \(event evt_[0-9A-Z]{26} written: t(rue)?\)/)
        assert.strictEqual(yield* countTenantRows("events", tenant.tenantId), 0)
        assert.strictEqual(yield* countTenantRows("deliveries", tenant.tenantId), 0)
      }).pipe(Effect.ensuring(dropTrigger))

      // Without the trigger the same request goes through, and the connection it failed on is healthy.
      const published = yield* publishAs(tenant.apiKey, "order.created", { attempt: 2 })
      assert.strictEqual(published.deliveriesQueued, 2)
      assert.deepStrictEqual(
        (yield* deliveriesOf(published.event.id)).map((row) => row.endpoint_id).sort(),
        [...endpoints].sort()
      )
      assert.strictEqual(yield* countTenantRows("events", tenant.tenantId), 1)
      assert.strictEqual(yield* countTenantRows("deliveries", tenant.tenantId), 2)
    })
  )
})
