import { assert, layer } from "@effect/vitest"
import { Arbitrary, Effect, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { compileFilter } from "../src/domain/EventFilter.ts"
import { matchesFilterReference } from "./support/eventFilterReference.ts"
import { apiClient, createTenant, request } from "./support/http.ts"
import { expectProblem } from "./support/problems.ts"
import { testServerWithSql } from "./support/sharedDatabase.ts"

/**
 * Payload filters (issue 20): validated on save (422 naming the path of the mistake), evaluated at fan-out so that an
 * event creates deliveries exactly for the endpoints whose filter it matches — checked against a reference matcher
 * written from the documented semantics (test/support/eventFilterReference.ts), on generated filters and events. The
 * real server (worker off: the deliveries created are the fan-out's answer) on the real database.
 */

type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }

const intBetween = (minimum: number, maximum: number) =>
  Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum, maximum })))
const pick = <A>(values: ReadonlyArray<A>): Arbitrary.Arbitrary<A> =>
  Arbitrary.map(intBetween(0, values.length - 1), (i) => values[i] as A)

/** A small vocabulary, so that filters and events meet: the same fields, the same values. */
const fields = ["a", "b", "c"]
const scalars: ReadonlyArray<Json> = [
  null,
  true,
  false,
  0,
  1,
  2.5,
  -1,
  100,
  "x",
  "order.created",
  "order.paid",
  "1",
  ""
]
const scalar = pick(scalars)
const field = pick(fields)

const value = (depth: number): Arbitrary.Arbitrary<Json> =>
  depth <= 0
    ? scalar
    : Arbitrary.flatMap(intBetween(0, 5), (kind): Arbitrary.Arbitrary<Json> => {
        if (kind <= 2) return scalar
        if (kind === 3) return Arbitrary.map(Arbitrary.array(scalar, { maxLength: 3 }), (items) => items)
        if (kind === 4) return object(depth - 1)
        return Arbitrary.map(Arbitrary.array(object(depth - 1), { maxLength: 2 }), (items) => items)
      })

const object = (depth: number): Arbitrary.Arbitrary<{ readonly [key: string]: Json }> =>
  Arbitrary.map(Arbitrary.array(Arbitrary.all([field, value(depth)]), { maxLength: 3 }), (entries) =>
    Object.fromEntries(entries)
  )

/** One condition on a field: a literal, or an operator with its argument. */
const condition: Arbitrary.Arbitrary<Json> = Arbitrary.flatMap(intBetween(0, 9), (kind): Arbitrary.Arbitrary<Json> => {
  switch (kind) {
    case 0:
      return scalar
    case 1:
      return Arbitrary.map(scalar, (v) => ({ $eq: v }))
    case 2:
      return Arbitrary.map(Arbitrary.array(scalar, { minLength: 1, maxLength: 3 }), (vs) => ({ $in: vs }))
    case 3:
      return Arbitrary.map(Arbitrary.array(scalar, { minLength: 1, maxLength: 3 }), (vs) => ({ $nin: vs }))
    case 4:
      return Arbitrary.map(
        Arbitrary.all([pick(["$gt", "$gte", "$lt", "$lte"]), pick([-1, 0, 1, 2.5, 100])]),
        ([op, n]) => ({
          [op]: n
        })
      )
    case 5:
      return Arbitrary.map(pick(["order.", "x", "", "1"]), (prefix) => ({ $startsWith: prefix }))
    case 6:
      return Arbitrary.map(pick([true, false]), (exists) => ({ $exists: exists }))
    default:
      return Arbitrary.map(Arbitrary.all([field, scalar]), ([name, v]) => ({ [name]: v }))
  }
})

/** A filter: conditions on `type` or paths into `data`, combined with `$and`/`$or`/`$not` now and then. */
const filterOf = (depth: number): Arbitrary.Arbitrary<{ readonly [key: string]: Json }> =>
  Arbitrary.flatMap(
    intBetween(0, depth <= 0 ? 2 : 5),
    (kind): Arbitrary.Arbitrary<{ readonly [key: string]: Json }> => {
      if (kind === 0) return Arbitrary.map(condition, (c) => ({ data: { a: c } }))
      if (kind === 1)
        return Arbitrary.map(Arbitrary.all([field, field, condition]), ([x, y, c]) => ({ data: { [x]: { [y]: c } } }))
      if (kind === 2)
        return Arbitrary.map(
          pick<Json>(["order.created", { $startsWith: "order." }, { $in: ["order.paid", "x"] }]),
          (t) => ({ type: t })
        )
      if (kind === 3)
        return Arbitrary.map(Arbitrary.array(filterOf(depth - 1), { minLength: 1, maxLength: 3 }), (parts) => ({
          $and: parts
        }))
      if (kind === 4)
        return Arbitrary.map(Arbitrary.array(filterOf(depth - 1), { minLength: 1, maxLength: 3 }), (parts) => ({
          $or: parts
        }))
      return Arbitrary.map(filterOf(depth - 1), (inner) => ({ $not: inner }))
    }
  )

const eventOf = Arbitrary.all([pick(["order.created", "order.paid", "other"]), object(2)])

layer(testServerWithSql(), { excludeTestServices: true })("payload filters", (it) => {
  it.effect(
    "invalid filters: 422 naming the path of the mistake; a valid one reads back, a PATCH replaces or removes it",
    () =>
      Effect.gen(function* () {
        const tenant = yield* createTenant("Filters")
        const api = yield* apiClient(tenant.apiKey)
        const url = "http://127.0.0.1:1029/hook"
        const refused: ReadonlyArray<readonly [unknown, string]> = [
          [{ data: { amount: { $gt: "10" } } }, "data.amount.$gt"],
          [{ data: { amount: { $regex: "x" } } }, "data.amount.$regex"],
          [{ data: {} }, "data"],
          [{ $or: [] }, "$or"],
          [{ $and: [{ type: "a" }, 3] }, "$and.1"],
          [{ data: { tags: { $in: [[1]] } } }, "data.tags.$in.0"],
          [{ data: { tags: [1, 2] } }, "data.tags"],
          [{ a: { b: { c: { d: { e: { f: { g: { h: { i: 1 } } } } } } } } }, "a.b.c.d.e.f.g.h"],
          [{ data: { x: "y".repeat(5000) } }, "(the filter)"],
          // What PostgreSQL cannot hold is refused here, not when the path is cast (a 500).
          [{ data: { x: "a\u0000b" } }, "data.x"],
          [{ data: { "a\u0000": 1 } }, "data.a\u0000"],
          [{ data: { x: { $startsWith: "\ud800" } } }, "data.x.$startsWith"]
        ]
        for (const [filter, path] of refused) {
          const response = yield* request("/v1/endpoints", { bearer: tenant.apiKey, json: { url, filter } })
          const body = expectProblem(response, 422)
          assert.include(String(body.detail), `not valid at ${path}:`, JSON.stringify(filter))
        }
        expectProblem(yield* request("/v1/endpoints", { bearer: tenant.apiKey, json: { url, filter: [1] } }), 400)

        const filter = { type: { $startsWith: "order." }, data: { total: { $gte: 100 } } }
        const created = yield* api.endpoints.create({ payload: { url, filter } })
        assert.deepStrictEqual(created.filter, filter)
        const replaced = yield* api.endpoints.update({ params: { id: created.id }, payload: { filter: { type: "x" } } })
        assert.deepStrictEqual(replaced.filter, { type: "x" })
        const kept = yield* api.endpoints.update({ params: { id: created.id }, payload: { description: "d" } })
        assert.deepStrictEqual(kept.filter, { type: "x" })
        const removed = yield* api.endpoints.update({ params: { id: created.id }, payload: { filter: null } })
        assert.isNull(removed.filter)
      })
  )

  it.effect.prop(
    "an event creates deliveries exactly for the endpoints whose filter it matches (the reference matcher's verdicts)",
    [
      Arbitrary.array(filterOf(2), { minLength: 1, maxLength: 5 }),
      Arbitrary.array(eventOf, { minLength: 1, maxLength: 5 })
    ],
    ([filters, events]) =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const tenant = yield* createTenant("Filters, generated")
        const api = yield* apiClient(tenant.apiKey)
        const endpoints: Array<{ readonly id: string; readonly filter: { readonly [key: string]: Json } }> = []
        for (const filter of filters) {
          assert.strictEqual(compileFilter(filter)._tag, "Compiled", JSON.stringify(filter))
          const created = yield* api.endpoints.create({ payload: { url: "http://127.0.0.1:1029/hook", filter } })
          endpoints.push({ id: created.id, filter })
        }
        for (const [type, data] of events) {
          const published = yield* api.events.publish({ payload: { type, data } })
          const rows = yield* sql<{ readonly endpoint_id: string }>`
            SELECT endpoint_id FROM deliveries WHERE event_id = ${published.event.id}`
          const expected = endpoints.filter((e) => matchesFilterReference(e.filter, type, data)).map((e) => e.id)
          assert.sameMembers(
            rows.map((r) => r.endpoint_id),
            expected,
            JSON.stringify({ type, data, filters: endpoints.map((e) => e.filter) })
          )
        }
      }),
    { timeout: 180_000, arbitrary: { runs: 60 } }
  )
})
