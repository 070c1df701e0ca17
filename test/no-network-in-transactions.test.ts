import { assert, layer } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import { SqlClient } from "effect/sql"
import { urlPolicyWith } from "../layers/UrlPolicyLive.ts"
import { createTenant, request } from "./support/http.ts"
import { poll } from "./support/poll.ts"
import { expectProblem } from "./support/problems.ts"
import { testServerWithSql } from "./support/sharedDatabase.ts"

/**
 * No network wait while a transaction or a pooled connection is held. The attack: idempotent endpoint writes whose
 * URL names a host whose DNS never answers. Before the fix each held a pooled connection `idle in transaction` for
 * the whole lookup, so a dozen of them took the whole pool and stalled every other tenant's reads. The real server on
 * the real database, its SSRF guard on a resolver this test holds (it never answers until the test lets it fail).
 */

const stalledHost = "stall.example"
const stalled: Array<Deferred.Deferred<void>> = []
let released = false

/** Public for every name but `stall.example`, whose lookup hangs until the test releases it (then it fails). */
const resolver = (host: string) =>
  host !== stalledHost
    ? Effect.succeed(["93.184.216.34"])
    : Effect.gen(function* () {
        if (!released) {
          const answer = yield* Deferred.make<void>()
          stalled.push(answer)
          yield* Deferred.await(answer)
        }
        return yield* Effect.fail(new Error("SERVFAIL"))
      })

/** More requests than the pool (4 connections) has connections. */
const attackers = 12

layer(testServerWithSql({ urlPolicy: urlPolicyWith(resolver), config: { webhookAllowPrivateNetworks: false } }), {
  excludeTestServices: true
})("endpoint writes whose DNS never answers", (it) => {
  it.effect("hold no connection: the pool stays free for other tenants; refusals are stored and replayed", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const attacker = yield* createTenant("Attacker")
      const bystander = yield* createTenant("Bystander")
      const own = yield* request("/v1/endpoints", {
        bearer: attacker.apiKey,
        json: { url: "https://public.example/hook" }
      })
      assert.strictEqual(own.status, 201, own.text)
      const ownId = (JSON.parse(own.text) as { readonly id: string }).id

      const stalledUrl = `https://${stalledHost}/hook`
      const write = (i: number) =>
        request(i % 3 === 2 ? `/v1/endpoints/${ownId}` : "/v1/endpoints", {
          method: i % 3 === 2 ? "PATCH" : "POST",
          bearer: attacker.apiKey,
          json: { url: stalledUrl },
          headers: { "idempotency-key": `stall-${i}` }
        })
      const fibers = yield* Effect.forEach(
        Array.from({ length: attackers }, (_, i) => i),
        (i) => Effect.forkChild(write(i))
      )

      // Every one of them is waiting on DNS at once: none waits for a connection first.
      yield* poll(
        `${attackers} lookups in flight`,
        Effect.sync(() => stalled.length),
        (n) => n === attackers
      )
      const [holding] = yield* sql<{ readonly n: number }>`
        SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND state LIKE 'idle in transaction%'`
      assert.strictEqual(holding?.n, 0, "no connection idle in a transaction")
      // Another tenant's reads are served meanwhile: every lookup is still hanging.
      for (let i = 0; i < 8; i++) {
        const read = yield* request("/v1/endpoints", { bearer: bystander.apiKey })
        assert.strictEqual(read.status, 200, read.text)
      }
      assert.strictEqual(stalled.length, attackers)
      assert.isTrue(
        fibers.every((fiber) => fiber.pollUnsafe() === undefined),
        "the writes are still waiting"
      )

      released = true
      for (const answer of stalled) yield* Deferred.succeed(answer, undefined)
      const answers = yield* Fiber.joinAll(fibers)
      for (const answer of answers) {
        const problem = expectProblem(answer, 422)
        assert.match(String(problem.detail), /^The endpoint URL is not allowed: /)
      }
      // Nothing was written, and each refusal is stored under its key like any 4xx: a retry gets it replayed.
      const listed = yield* request("/v1/endpoints", { bearer: attacker.apiKey })
      assert.deepStrictEqual(
        (JSON.parse(listed.text) as { readonly data: ReadonlyArray<{ readonly url: string }> }).data.map((e) => e.url),
        ["https://public.example/hook"]
      )
      const retried = yield* write(0)
      expectProblem(retried, 422)
      assert.strictEqual(retried.headers.get("idempotent-replayed"), "true")
    })
  )
})
