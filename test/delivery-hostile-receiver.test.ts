import { createServer, type Socket } from "node:net"
import { assert, layer } from "@effect/vitest"
import { Arbitrary, Duration, Effect, Schema, type Scope } from "effect"
import { SqlClient } from "effect/sql"
import { apiClient, createTenant } from "./support/http.ts"
import { answer, eventually, makeReceiver } from "./support/receiver.ts"
import { testServerWithSql } from "./support/sharedDatabase.ts"

/**
 * A receiver must not be able to make codex-api work for it forever: whatever it answers, each send uses up an attempt
 * and the delivery ends after DELIVERY_MAX_ATTEMPTS. The real server with its worker, real receivers on 127.0.0.1 and
 * the real database. The lease (DELIVERY_TIMEOUT + 30 s) is far longer than these tests wait, so a delivery whose
 * attempt was not recorded would stay pending and fail them.
 */

const maxAttempts = 3

const delivery = {
  worker: true,
  timeout: Duration.seconds(2),
  maxAttempts,
  backoffBase: Duration.millis(20),
  backoffMax: Duration.millis(50),
  concurrency: 8,
  endpointConcurrency: 4,
  tenantConcurrency: 8,
  pollInterval: Duration.millis(50),
  leaseMargin: Duration.seconds(30)
}

type Api = Effect.Success<ReturnType<typeof apiClient>>

const tenantWithEndpoint = (url: string) =>
  Effect.gen(function* () {
    const api = yield* apiClient((yield* createTenant("Hostile receiver")).apiKey)
    yield* api.endpoints.create({ payload: { url } })
    return api
  }).pipe(Effect.orDie)

/**
 * A receiver on a raw socket (node:http refuses to write a malformed status line): it answers each webhook with the
 * status line the event's `data.line` names (base64: any bytes, NUL included), then closes the connection.
 */
const rawReceiver: Effect.Effect<string, never, Scope.Scope> = Effect.acquireRelease(
  Effect.promise(async () => {
    const sockets = new Set<Socket>()
    const server = createServer((socket) => {
      sockets.add(socket)
      socket.on("close", () => sockets.delete(socket))
      let received = ""
      socket.on("data", (chunk: Buffer) => {
        received += chunk.toString("latin1")
        const headerEnd = received.indexOf("\r\n\r\n")
        if (headerEnd === -1) return
        const length = Number(/content-length: *(\d+)/i.exec(received.slice(0, headerEnd))?.[1] ?? "0")
        const body = Buffer.from(received.slice(headerEnd + 4), "latin1")
        if (body.length < length) return
        const { data } = JSON.parse(body.toString("utf8")) as { readonly data: { readonly line: string } }
        const line = Buffer.from(data.line, "base64").toString("latin1")
        socket.end(`${line}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok`, "latin1")
      })
      socket.on("error", () => socket.destroy())
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    return { server, sockets, url: `http://127.0.0.1:${port}/hook` }
  }),
  ({ server, sockets }) =>
    Effect.promise(
      () =>
        new Promise<void>((resolve) => {
          for (const socket of sockets) socket.destroy()
          server.close(() => resolve())
        })
    )
).pipe(Effect.map(({ url }) => url))

/** Status lines a receiver may write: valid, out of range, not numbers, no reason, odd versions. */
const statusLine = Arbitrary.flatMap(
  Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 4 }))),
  (kind) => {
    const code = Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 99_999 })))
    switch (kind) {
      case 0:
        return Arbitrary.map(code, (n) => `HTTP/1.1 ${n} Weird`)
      case 1:
        return Arbitrary.map(
          Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 100, maximum: 999 }))),
          (n) => `HTTP/1.1 ${n} X`
        )
      case 2:
        return Arbitrary.map(code, (n) => `HTTP/1.0 ${n}`)
      case 3:
        return Arbitrary.map(
          Arbitrary.schema(Schema.String.check(Schema.isMaxLength(12))),
          (text) => `HTTP/1.1 ${text.replace(/[\r\n]/g, "")} Reason`
        )
      default:
        return Arbitrary.map(code, (n) => `HTTP/9.9 ${n} Future`)
    }
  }
)

/** Publishes one event and waits until its delivery is no longer pending; returns it with its attempts. */
const publishAndSettle = (api: Api, data: { readonly [key: string]: string | number } = { n: 1 }) =>
  Effect.gen(function* () {
    const { event } = yield* api.events.publish({ payload: { type: "order.created", data } })
    const settled = yield* eventually(
      `delivery of ${event.id} settled`,
      api.deliveries
        .listForEvent({ params: { id: event.id } })
        .pipe(Effect.map(({ data }) => (data[0] === undefined || data[0].status === "pending" ? undefined : data[0]))),
      15_000
    )
    return yield* api.deliveries.get({ params: { id: settled.id } })
  }).pipe(Effect.orDie)

layer(testServerWithSql({ config: { delivery } }), { excludeTestServices: true })("a hostile receiver", (it) => {
  for (const status of [999, 600]) {
    it.effect(`a status line with ${status} is a failed attempt without a status; the delivery ends`, () =>
      Effect.gen(function* () {
        const receiver = yield* makeReceiver((_, __, res) => {
          // node:http writes any 3-digit status it is given: `HTTP/1.1 999 Weird`.
          res.statusMessage = "Weird"
          res.writeHead(status)
          res.end("weird")
        })
        const api = yield* tenantWithEndpoint(receiver.url)
        const settled = yield* publishAndSettle(api)

        assert.strictEqual(settled.status, "failed")
        assert.strictEqual(settled.attemptCount, maxAttempts)
        assert.strictEqual(settled.lastStatus, null)
        assert.strictEqual(receiver.requests.length, maxAttempts)
        assert.deepStrictEqual(
          settled.attempts.map((a) => [a.attempt, a.outcome, a.statusCode]),
          [
            [1, "failed", null],
            [2, "failed", null],
            [3, "failed", null]
          ]
        )
        for (const attempt of settled.attempts) {
          assert.include(attempt.error ?? "", `invalid HTTP status ${status}`)
          assert.strictEqual(attempt.responseExcerpt, "weird")
        }
      })
    )
  }

  it.effect(
    "an attempt the database refuses to record as received is recorded without the response; the delivery moves on",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        // Whatever a receiver can send, this stands for a record the table refuses.
        yield* sql`ALTER TABLE delivery_attempts ADD CONSTRAINT test_refuses_poison
          CHECK (response_excerpt IS NULL OR response_excerpt NOT LIKE '%poison%')`
        const receiver = yield* makeReceiver((_, __, res) => answer(res, 500, {}, "poison"))
        const api = yield* tenantWithEndpoint(receiver.url)
        const settled = yield* publishAndSettle(api).pipe(
          Effect.ensuring(Effect.orDie(sql`ALTER TABLE delivery_attempts DROP CONSTRAINT test_refuses_poison`))
        )

        assert.strictEqual(settled.status, "failed")
        assert.strictEqual(settled.attemptCount, maxAttempts)
        assert.strictEqual(receiver.requests.length, maxAttempts)
        assert.deepStrictEqual(
          settled.attempts.map((a) => [a.attempt, a.outcome, a.statusCode, a.responseExcerpt]),
          [
            [1, "failed", 500, null],
            [2, "failed", 500, null],
            [3, "failed", 500, null]
          ]
        )
        for (const attempt of settled.attempts) assert.include(attempt.error ?? "", "could not be stored as received")
      })
  )

  it.effect.prop(
    "fuzz: whatever status line a receiver writes, the delivery ends within its attempts with statuses in 100-599",
    [statusLine],
    ([line]) =>
      Effect.gen(function* () {
        const api = yield* tenantWithEndpoint(yield* rawReceiver)
        const settled = yield* publishAndSettle(api, { line: Buffer.from(line, "latin1").toString("base64") })
        assert.oneOf(settled.status, ["succeeded", "failed"], line)
        assert.isAtMost(settled.attemptCount, maxAttempts, line)
        assert.strictEqual(settled.attempts.length, settled.attemptCount, line)
        for (const attempt of settled.attempts) {
          if (attempt.statusCode !== null) assert.isTrue(attempt.statusCode >= 100 && attempt.statusCode <= 599, line)
        }
      }).pipe(Effect.scoped),
    { timeout: 180_000, arbitrary: { runs: 40 } }
  )
})
