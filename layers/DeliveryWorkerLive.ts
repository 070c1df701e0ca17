import { randomBytes } from "node:crypto"
import { PgClient } from "@effect/sql-pg"
import {
  Deferred,
  Duration,
  Effect,
  Fiber,
  FiberSet,
  Layer,
  Option,
  Queue,
  Random,
  Schedule,
  Stream,
  Tracer
} from "effect"
import { HttpClient, type HttpClientError, HttpClientRequest, type HttpClientResponse } from "effect/http"
import { SqlClient, type SqlError, type Statement } from "effect/sql"
import { AppConfig } from "../services/AppConfig.ts"
import { DeliveryWakeups } from "../services/DeliveryWakeups.ts"
import { DeliveryWorker } from "../services/DeliveryWorker.ts"
import { type CircuitRejected, CircuitVerdict, EndpointCircuits } from "../services/EndpointCircuits.ts"
import { type DeliveryOutcome, Metrics } from "../services/Metrics.ts"
import { SecretBox, SecretContext } from "../services/SecretBox.ts"
import { destinationNotPermitted, UrlPolicy } from "../services/UrlPolicy.ts"
import { isTransientStatus } from "../src/domain/CircuitPolicy.ts"
import {
  type AttemptOutcome,
  deletedEndpointError,
  deliveryChannel,
  invalidStatusError,
  isHttpStatus,
  outcomeOfStatus,
  parseTraceparent,
  responseExcerptBytes,
  storableExcerpt,
  webhookBody
} from "../src/domain/Delivery.ts"
import { delayAfterAttempt, parseRetryAfter, retrySchedule } from "../src/domain/RetryPolicy.ts"
import { basicAuthTarget } from "../src/domain/UrlCredentials.ts"
import { webhookHeaders } from "../src/domain/WebhookSignature.ts"
import { type ClaimedRow, claimDue } from "./DeliveryClaim.ts"
import { blockedAtConnect, DeliveryHttpClientLive } from "./DeliveryHttpClient.ts"
import { UrlPolicyLive } from "./UrlPolicyLive.ts"

/** The attempt's error when the endpoint's secret cannot be opened: for the tenant, without the operator's details. */
const unreadableSecretError =
  "not sent: the endpoint's signing secret cannot be decrypted (server key configuration); retried like a failure"

/** What one attempt came to. */
interface AttemptResult {
  readonly outcome: AttemptOutcome
  readonly statusCode: number | null
  readonly error: string | null
  readonly excerpt: string | null
  readonly retryAfter: Option.Option<Duration.Duration>
}

const metricOutcome: Record<AttemptOutcome, DeliveryOutcome> = {
  succeeded: "success",
  failed: "failure",
  gone: "gone",
  timeout: "timeout",
  network_error: "network_error",
  blocked: "rejected"
}

/**
 * What an attempt tells the endpoint's circuit, after Polly's transient-failure predicate: network errors, timeouts,
 * 408, 429 and 5xx count against the receiver (with its Retry-After as a hint for how long to stay open); any other
 * answer, 3xx and 4xx included, shows a receiver that is up (those deliveries still fail and retry on their own); an
 * attempt the SSRF guard refused sent nothing, so it says nothing.
 */
const circuitVerdict = (result: AttemptResult): CircuitVerdict => {
  switch (result.outcome) {
    case "succeeded":
    case "gone":
      return CircuitVerdict.success
    case "blocked":
      return CircuitVerdict.ignored
    case "timeout":
    case "network_error":
      return CircuitVerdict.failure()
    case "failed":
      // No status: the receiver answered something that is not HTTP (a status outside 100-599): it is broken.
      if (result.statusCode === null) return CircuitVerdict.failure()
      return isTransientStatus(result.statusCode)
        ? CircuitVerdict.failure(Option.getOrUndefined(result.retryAfter))
        : CircuitVerdict.success
  }
}

/** While another attempt probes a half-open circuit, the endpoint's deliveries look again after about this long. */
const halfOpenRecheck = Duration.seconds(1)

/** Reads at most `responseExcerptBytes` of the body, then stops (the rest is never downloaded). */
const readExcerpt = (response: HttpClientResponse.HttpClientResponse) =>
  Effect.gen(function* () {
    const chunks: Array<Uint8Array> = []
    let size = 0
    yield* Stream.runForEachWhile(response.stream, (chunk) =>
      Effect.sync(() => {
        const take = chunk.subarray(0, responseExcerptBytes - size)
        chunks.push(take)
        size += take.length
        return size < responseExcerptBytes
      })
    )
    const bytes = new Uint8Array(size)
    let offset = 0
    for (const chunk of chunks) {
      bytes.set(chunk, offset)
      offset += chunk.length
    }
    return storableExcerpt(bytes)
  })

/** `TransportError: connect ECONNREFUSED 127.0.0.1:1` — the reason and the Node error code, never a stack. */
const describeClientError = (error: HttpClientError.HttpClientError): string => {
  const reason = error.reason
  const cause: unknown = "cause" in reason ? reason.cause : undefined
  const code =
    typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string" ? cause.code : ""
  const message = cause instanceof Error ? cause.message : (reason.description ?? "")
  return `${reason._tag}${code === "" ? "" : ` ${code}`}${message === "" ? "" : `: ${message}`}`.slice(0, 1024)
}

/**
 * OpenTelemetry HTTP client attributes of a delivery attempt. `url.full` without credentials, query or fragment: an
 * endpoint URL may carry a token there, and traces are not a place for secrets.
 */
const clientSpanAttributes = (raw: string): Record<string, string | number> => {
  try {
    const url = new URL(raw)
    const port = url.port === "" ? (url.protocol === "https:" ? 443 : 80) : Number(url.port)
    return {
      "http.request.method": "POST",
      "url.full": `${url.protocol}//${url.host}${url.pathname}`,
      "server.address": url.hostname,
      "server.port": port
    }
  } catch {
    return { "http.request.method": "POST" }
  }
}

const newWorkerId = (): string => `wkr_${randomBytes(8).toString("hex")}`

/** What the worker needs from its process besides an HTTP client (its own, or one a test gives it). */
type WorkerRequirements =
  | AppConfig
  | SqlClient.SqlClient
  | PgClient.PgClient
  | UrlPolicy
  | Metrics
  | EndpointCircuits
  | SecretBox
  | DeliveryWakeups

/**
 * The delivery worker (see services/DeliveryWorker.ts). One claim loop fills up to `DELIVERY_CONCURRENCY` sends; it
 * sleeps until a publishing transaction's NOTIFY, this process's own writers (DeliveryWakeups, after their commit), a
 * finished send or the poll interval wakes it. Each claim (DeliveryClaim.ts) takes due deliveries fairly across
 * tenants and endpoints with `FOR UPDATE SKIP LOCKED` and leases them (`locked_until`, `locked_by`) for the send
 * timeout plus a margin, so concurrent workers never claim the same delivery, and a crashed worker's deliveries come
 * due again when the lease runs out. Finishing a delivery (attempt row + new state) is one transaction, conditional
 * on still holding the lease. Each attempt runs through its endpoint's circuit (EndpointCircuits); an open circuit
 * defers the endpoint's deliveries without using attempts. At most `DELIVERY_TENANT_CONCURRENCY` sends per tenant and
 * `DELIVERY_ENDPOINT_CONCURRENCY` per endpoint are in flight.
 */
export const DeliveryWorkerLive: Layer.Layer<DeliveryWorker, never, WorkerRequirements | HttpClient.HttpClient> =
  Layer.effect(
    DeliveryWorker,
    Effect.gen(function* () {
      const config = yield* AppConfig
      const sql = yield* SqlClient.SqlClient
      const pg = yield* PgClient.PgClient
      const urlPolicy = yield* UrlPolicy
      const metrics = yield* Metrics
      const client = yield* HttpClient.HttpClient
      const circuits = yield* EndpointCircuits
      const box = yield* SecretBox
      const inProcess = yield* DeliveryWakeups
      const settings = config.delivery
      const workerId = newWorkerId()
      const userAgent = `codex-api/${config.version}`
      const schedule = retrySchedule({
        maxAttempts: settings.maxAttempts,
        base: settings.backoffBase,
        max: settings.backoffMax
      })
      // The lease outlasts the longest send (timeout, plus the DNS check of the SSRF guard) with room to record it.
      const leaseSeconds = Duration.toMillis(Duration.sum(settings.timeout, settings.leaseMargin)) / 1000
      // LISTEN holds a connection for good: not on a pool of one (the embedded database), which polls instead.
      const listening = Option.isSome(config.databaseUrl) && config.databasePoolMax >= 2

      const wakeups = yield* Queue.dropping<void>(1)
      const wake = Queue.offer(wakeups, undefined).pipe(Effect.asVoid)
      const waitForWork = Queue.take(wakeups).pipe(Effect.timeoutOption(settings.pollInterval), Effect.asVoid)
      // Deliveries queued by this process wake it directly: the only wake-up on a pool of one, which cannot LISTEN.
      yield* inProcess.subscribe(wake)
      let inFlight = 0

      /**
       * The endpoint's circuit refused the attempt: no attempt is recorded and none is used up. This delivery, and the
       * endpoint's other deliveries due before then that nobody holds, wait until the circuit lets a probe through
       * (`open`), or look again shortly while another worker's probe runs (`half_open`). Moving them all at once spares
       * claiming them one by one only to be refused; SKIP LOCKED keeps it clear of rows being claimed.
       */
      const defer = (row: ClaimedRow, rejected: CircuitRejected) =>
        Effect.gen(function* () {
          const wait =
            rejected.circuit === "open"
              ? Duration.max(rejected.retryAfter, Duration.millis(50))
              : Duration.times(halfOpenRecheck, yield* Random.nextBetween(0.8, 1.2))
          const until = sql`now() + make_interval(secs => ${Duration.toMillis(wait) / 1000})`
          const moved = yield* sql`
          WITH others AS (
            SELECT id FROM deliveries
            WHERE endpoint_id = ${row.endpoint_id} AND status = 'pending' AND next_attempt_at < ${until}
              AND (locked_until IS NULL OR locked_until < now())
            FOR UPDATE SKIP LOCKED
          )
          UPDATE deliveries SET next_attempt_at = ${until}, locked_until = NULL, locked_by = NULL, updated_at = now()
          WHERE (id = ${row.id} AND locked_by = ${workerId} AND status = 'pending') OR id IN (SELECT id FROM others)
          RETURNING id`
          yield* Effect.logDebug("delivery deferred: the endpoint's circuit is not closed").pipe(
            Effect.annotateLogs({
              deliveryId: row.id,
              endpointId: row.endpoint_id,
              circuit: rejected.circuit,
              waitMs: Math.round(Duration.toMillis(wait)),
              deferred: moved.length
            })
          )
        })

      /**
       * The secrets to sign with, opened: the current one (a failure when it cannot be opened: nothing can be signed),
       * then the previous one while its overlap lasts (dropped, with a warning, when it cannot be opened).
       */
      const signingSecrets = (row: ClaimedRow, sealed: string) =>
        Effect.gen(function* () {
          const context = SecretContext.endpointSecret(row.endpoint_id)
          const current = yield* box.open(sealed, context)
          if (row.previous_secret === null) return [current] as const
          const previous = yield* box
            .open(row.previous_secret, context)
            .pipe(
              Effect.catchTag("SecretUnreadable", (error) =>
                Effect.logWarning(
                  "delivery: the previous signing secret cannot be opened; signing with the current one"
                ).pipe(
                  Effect.annotateLogs({ endpointId: row.endpoint_id, reason: error.reason, keyId: error.keyId }),
                  Effect.as(undefined)
                )
              )
            )
          return previous === undefined ? ([current] as const) : ([current, previous] as const)
        })

      /** The HTTP request itself: at most `DELIVERY_TIMEOUT` for connect, send, headers and the body excerpt. */
      const send = (row: ClaimedRow, secrets: readonly [string, ...ReadonlyArray<string>]) =>
        Effect.gen(function* () {
          const body = webhookBody(row.event_type, row.event_occurred_at, row.event_data)
          const headers = webhookHeaders(secrets, row.event_id, Date.now() / 1000, body)
          // Tracing on, the client injects the attempt span's own `traceparent` (a child of the stored one). Tracing
          // off, its spans would be random and unrelated: the publisher's `traceparent` goes on unchanged, or none.
          const exporting = (yield* Effect.tracer) !== Tracer.nativeTracer
          const passedOn = !exporting && row.traceparent !== null ? { traceparent: row.traceparent } : {}
          // Credentials in the URL become Basic authentication (the client would drop them without a word).
          const target = basicAuthTarget(row.url)
          const authorization = target.authorization === undefined ? {} : { authorization: target.authorization }
          const request = HttpClientRequest.post(target.url).pipe(
            HttpClientRequest.setHeaders({ ...headers, ...passedOn, ...authorization, "user-agent": userAgent }),
            HttpClientRequest.bodyText(body, "application/json")
          )
          const execute = exporting
            ? client.execute(request)
            : client.execute(request).pipe(Effect.provideService(HttpClient.TracerPropagationEnabled, false))
          const exchange = execute.pipe(
            Effect.flatMap((response) =>
              readExcerpt(response).pipe(
                Effect.map((excerpt) => ({ status: response.status, headers: response.headers, excerpt }))
              )
            ),
            Effect.scoped
          )
          const result = yield* exchange.pipe(Effect.timeoutOption(settings.timeout), Effect.result)
          if (result._tag === "Failure") {
            const blocked = blockedAtConnect(result.failure)
            if (blocked !== undefined) {
              // As at the URL check: the detail (it names the address a name resolved to) is for development and logs.
              yield* Effect.logDebug("delivery blocked at connect time").pipe(
                Effect.annotateLogs({ deliveryId: row.id, reason: blocked })
              )
              return {
                outcome: "blocked",
                statusCode: null,
                error: (config.appEnv === "development"
                  ? `address not allowed at connect time: ${blocked}`
                  : `URL not allowed: ${destinationNotPermitted}`
                ).slice(0, 1024),
                excerpt: null,
                retryAfter: Option.none()
              } satisfies AttemptResult
            }
            return {
              outcome: "network_error",
              statusCode: null,
              error: describeClientError(result.failure),
              excerpt: null,
              retryAfter: Option.none()
            } satisfies AttemptResult
          }
          if (Option.isNone(result.success)) {
            return {
              outcome: "timeout",
              statusCode: null,
              error: `no complete response within ${Duration.format(settings.timeout)}`,
              excerpt: null,
              retryAfter: Option.none()
            } satisfies AttemptResult
          }
          const response = result.success.value
          if (!isHttpStatus(response.status)) {
            return {
              outcome: "failed",
              statusCode: null,
              error: invalidStatusError(response.status),
              excerpt: response.excerpt,
              retryAfter: Option.none()
            } satisfies AttemptResult
          }
          return {
            outcome: outcomeOfStatus(response.status),
            statusCode: response.status,
            error: null,
            excerpt: response.excerpt,
            retryAfter: parseRetryAfter(response.headers["retry-after"], Date.now())
          } satisfies AttemptResult
        })

      /** The SSRF guard again, right before sending (DNS answers change), then the request. */
      const attempt = (
        row: ClaimedRow,
        secrets: readonly [string, ...ReadonlyArray<string>]
      ): Effect.Effect<AttemptResult> =>
        urlPolicy.check(row.url).pipe(
          Effect.matchEffect({
            onFailure: (blocked) =>
              Effect.succeed<AttemptResult>({
                outcome: "blocked",
                statusCode: null,
                error: `URL not allowed: ${blocked.reason}`.slice(0, 1024),
                excerpt: null,
                retryAfter: Option.none()
              }),
            onSuccess: () => send(row, secrets)
          })
        )

      /**
       * Records the attempt and moves the delivery on, atomically, the delivery only while this worker holds the lease
       * (the attempt is recorded either way: the request was sent). One statement (the attempt's INSERT and the
       * delivery's UPDATE as data-modifying CTEs) for every outcome but 410 Gone, which also disables the endpoint and
       * cancels its other deliveries in a transaction: a round trip costs more here than the SQL in it. A delivery
       * cancelled while its attempt was in flight (its endpoint deleted, or disabled by a 410 elsewhere) stays cancelled
       * with the attempt counted; one deleted meanwhile (its tenant deleted) has nothing left to record the attempt on.
       */
      const finish = (row: ClaimedRow, number: number, startedAt: Date, durationMs: number, result: AttemptResult) =>
        Effect.gen(function* () {
          const mine = sql`id = ${row.id} AND locked_by = ${workerId} AND status = 'pending'`
          const common = sql`attempt_count = ${number}, locked_until = NULL, locked_by = NULL,
          last_status = ${result.statusCode}, last_error = ${result.error}, updated_at = now()`
          // The delivery, held against deletion until the statement ends (FOR KEY SHARE): deleted meanwhile, it yields
          // no row and the INSERT below records nothing, where it would otherwise fail on the foreign key.
          const target = sql`SELECT id FROM deliveries WHERE id = ${row.id} FOR KEY SHARE`
          const recorded = sql`
          INSERT INTO delivery_attempts
            (delivery_id, attempt, started_at, duration_ms, outcome, status_code, error, response_excerpt)
          SELECT id, ${number}, ${startedAt}, ${durationMs}, ${result.outcome}, ${result.statusCode},
                 ${result.error}, ${result.excerpt}
          FROM target
          RETURNING 1`
          // Cancelled while in flight: it stays cancelled (its last_error says why), the attempt counts. No lease is
          // asked for: the cancellation cleared it, and nothing ever claims a cancelled delivery.
          const keepCancelled = sql`
          UPDATE deliveries SET attempt_count = GREATEST(attempt_count, ${number}), last_status = ${result.statusCode},
            locked_until = NULL, locked_by = NULL, updated_at = now()
          WHERE id = ${row.id} AND status = 'cancelled'
          RETURNING id`
          /**
           * The attempt's INSERT and `update` (an UPDATE of this delivery ... RETURNING id), or `keepCancelled`, in one
           * statement: `update` asks for a pending delivery and `keepCancelled` for a cancelled one, so at most one of
           * them applies, and readers never see the attempt without its count.
           */
          const recordAnd = (update: Statement.Fragment) =>
            Effect.map(
              sql<{ readonly recorded: boolean; readonly moved: boolean; readonly kept: boolean }>`
              WITH target AS (${target}), recorded AS (${recorded}), moved AS (${update}), kept AS (${keepCancelled})
              SELECT EXISTS (SELECT 1 FROM recorded) AS recorded, EXISTS (SELECT 1 FROM moved) AS moved,
                     EXISTS (SELECT 1 FROM kept) AS kept`,
              ([row]) => ({ recorded: row?.recorded === true, moved: row?.moved === true, kept: row?.kept === true })
            )
          /** The state after `recordAnd`: `moved` as the outcome, or why the delivery did not move. */
          const settle = <A extends string>(
            outcome: { readonly recorded: boolean; readonly moved: boolean; readonly kept: boolean },
            moved: A
          ): Effect.Effect<A | "cancelled" | "lease lost" | "delivery deleted", SqlError.SqlError> => {
            if (outcome.moved) return Effect.succeed(moved)
            if (outcome.kept) return Effect.succeed("cancelled" as const)
            if (!outcome.recorded) return Effect.succeed("delivery deleted" as const)
            // Cancelled while the statement ran, after its snapshot: a new statement sees it. Otherwise another worker
            // holds the lease.
            return Effect.map(keepCancelled, (rows) =>
              rows.length > 0 ? ("cancelled" as const) : ("lease lost" as const)
            )
          }
          if (result.outcome === "succeeded") {
            const outcome = yield* recordAnd(
              sql`UPDATE deliveries SET status = 'succeeded', delivered_at = now(), ${common} WHERE ${mine} RETURNING id`
            )
            return yield* settle(outcome, "succeeded" as const)
          }
          if (result.outcome === "gone") {
            // A transaction holds a pooled connection: SQL only inside (the send is over), never a network wait.
            return yield* Effect.gen(function* () {
              const outcome = yield* recordAnd(
                sql`UPDATE deliveries SET status = 'failed', ${common} WHERE ${mine} RETURNING id`
              )
              const state = yield* settle(outcome, "endpoint disabled" as const)
              if (state === "delivery deleted") return state
              // 410 Gone: the receiver asks us to stop. Disable the endpoint and cancel everything still pending for it
              // (a deleted endpoint stays as its deletion left it: it has nothing pending, and no one reads it).
              yield* sql`
              UPDATE endpoints SET enabled = false, updated_at = now(),
                disabled_reason = ${`the endpoint answered 410 Gone (delivery ${row.id})`}
              WHERE id = ${row.endpoint_id} AND deleted_at IS NULL`
              yield* sql`
              UPDATE deliveries SET status = 'cancelled', locked_until = NULL, locked_by = NULL,
                last_error = 'cancelled: the endpoint answered 410 Gone and was disabled', updated_at = now()
              WHERE endpoint_id = ${row.endpoint_id} AND status = 'pending'`
              return state
            }).pipe(sql.withTransaction)
          }
          const next = yield* delayAfterAttempt(schedule, number)
          if (Option.isNone(next)) {
            const outcome = yield* recordAnd(
              sql`UPDATE deliveries SET status = 'failed', ${common} WHERE ${mine} RETURNING id`
            )
            return yield* settle(outcome, "failed" as const)
          }
          // A receiver's Retry-After (429/503...) is honoured up to DELIVERY_BACKOFF_MAX; the backoff is the floor.
          const delay = Option.match(result.retryAfter, {
            onNone: () => next.value,
            onSome: (asked) => Duration.max(next.value, Duration.min(asked, settings.backoffMax))
          })
          const outcome = yield* recordAnd(sql`
          UPDATE deliveries SET next_attempt_at = now() + make_interval(secs => ${Duration.toMillis(delay) / 1000}),
            ${common}
          WHERE ${mine} RETURNING id`)
          return yield* settle(outcome, "retry scheduled" as const)
        })

      /**
       * Records the attempt as `finish` does; should the database refuse the record as it came back (a value a CHECK
       * refuses, say), the attempt is recorded again without what the receiver sent (no excerpt, no invalid status) and
       * the delivery still moves on: it uses up the attempt and backs off. Otherwise a receiver could have its delivery
       * re-sent at every lease expiry, forever, without ever using an attempt. Only a database that does not answer at
       * all leaves the lease to expire.
       */
      const record = (row: ClaimedRow, number: number, startedAt: Date, durationMs: number, result: AttemptResult) =>
        finish(row, number, startedAt, durationMs, result).pipe(
          Effect.catchCause((cause) =>
            Effect.logWarning(
              "delivery: the attempt could not be recorded as received; recording it without the response",
              cause
            ).pipe(
              Effect.annotateLogs({ deliveryId: row.id, attempt: number }),
              Effect.andThen(
                finish(row, number, startedAt, durationMs, {
                  outcome: result.outcome,
                  statusCode: result.statusCode !== null && isHttpStatus(result.statusCode) ? result.statusCode : null,
                  error: "the attempt's result could not be stored as received; recorded without the response",
                  excerpt: null,
                  retryAfter: result.retryAfter
                })
              )
            )
          )
        )

      /** Cancels a claimed delivery without sending it, `lastError` saying why. */
      const cancelClaimed = (row: ClaimedRow, lastError: string) =>
        sql`
        UPDATE deliveries SET status = 'cancelled', locked_until = NULL, locked_by = NULL,
          last_error = ${lastError}, updated_at = now()
        WHERE id = ${row.id} AND locked_by = ${workerId} AND status = 'pending'`

      /** One claimed delivery, start to finish. Never fails: problems are logged, the lease then runs out. */
      const deliver = (row: ClaimedRow) =>
        Effect.gen(function* () {
          // Deleted: queued by a publish that read the endpoint just before its deletion committed (see
          // EndpointsLive `delete`). A deleted endpoint has no secret, and receives nothing any more.
          if (row.endpoint_deleted || row.secret === null) {
            yield* cancelClaimed(row, deletedEndpointError)
            return
          }
          if (!row.enabled) {
            yield* cancelClaimed(row, "cancelled: the endpoint is disabled")
            return
          }
          const number = row.attempt_count + 1
          const startedAt = new Date()
          const started = performance.now()
          const secrets = yield* signingSecrets(row, row.secret).pipe(Effect.result)
          if (secrets._tag === "Failure") {
            // Nothing can be signed (a key missing from ENCRYPTION_KEYS): record a failed attempt without sending, so
            // the delivery backs off and retries like any failure (and recovers once the key is configured again).
            const error = secrets.failure
            yield* Effect.logError(
              "delivery: the endpoint's signing secret cannot be opened; attempt recorded as failed"
            ).pipe(
              Effect.annotateLogs({
                deliveryId: row.id,
                endpointId: row.endpoint_id,
                reason: error.reason,
                keyId: error.keyId
              })
            )
            const result: AttemptResult = {
              outcome: "failed",
              statusCode: null,
              error: unreadableSecretError,
              excerpt: null,
              retryAfter: Option.none()
            }
            metrics.deliveryAttempt(metricOutcome.failed, 0)
            const state = yield* finish(row, number, startedAt, 0, result).pipe(Effect.uninterruptible)
            if (state === "lease lost") {
              yield* Effect.logWarning("delivery: lease lost before the attempt was recorded").pipe(
                Effect.annotateLogs({ deliveryId: row.id, attempt: number })
              )
            }
            return
          }
          const parent = parseTraceparent(row.traceparent)
          const traced = attempt(row, secrets.success).pipe(
            Effect.tap((result) =>
              Effect.annotateCurrentSpan(
                result.statusCode === null
                  ? { "error.type": result.outcome }
                  : {
                      "http.response.status_code": result.statusCode,
                      ...(result.outcome === "succeeded" ? {} : { "error.type": String(result.statusCode) })
                    }
              )
            ),
            Effect.withSpan("webhook.deliver", {
              kind: "client",
              attributes: {
                ...clientSpanAttributes(row.url),
                "codex.delivery.id": row.id,
                "codex.delivery.attempt": number,
                "codex.event.id": row.event_id,
                "codex.endpoint.id": row.endpoint_id
              },
              ...(parent === undefined ? {} : { parent: Tracer.externalSpan(parent) })
            })
          )
          // One attempt (its timeout included) is one outcome for the endpoint's circuit; retries happen across claims.
          const guarded = yield* circuits.guard(row.endpoint_id, traced, circuitVerdict).pipe(Effect.result)
          if (guarded._tag === "Failure") {
            yield* defer(row, guarded.failure)
            return
          }
          const result = guarded.success
          const durationMs = Math.round(performance.now() - started)
          metrics.deliveryAttempt(metricOutcome[result.outcome], durationMs / 1000)
          const state = yield* record(row, number, startedAt, durationMs, result).pipe(Effect.uninterruptible)
          if (state === "succeeded") metrics.deliveryLag((Date.now() - row.event_created_at.getTime()) / 1000)
          yield* Effect.logDebug("delivery attempt").pipe(
            Effect.annotateLogs({
              deliveryId: row.id,
              attempt: number,
              outcome: result.outcome,
              status: result.statusCode,
              durationMs,
              state
            })
          )
          if (state === "lease lost") {
            yield* Effect.logWarning("delivery: lease lost before the attempt was recorded").pipe(
              Effect.annotateLogs({ deliveryId: row.id, attempt: number })
            )
          }
        }).pipe(
          Effect.catchCause((cause) =>
            Effect.logError("delivery: could not record the attempt; it is retried when the lease expires", cause).pipe(
              Effect.annotateLogs({ deliveryId: row.id })
            )
          )
        )

      const sends = yield* FiberSet.make<void, never>()

      // Bulkheads: at most `concurrency` sends in this process, at most `tenantConcurrency` of them per tenant and
      // `endpointConcurrency` per endpoint, so a slow receiver or a noisy tenant ties up a few slots, never the worker.
      const perEndpoint = new Map<string, number>()
      const perTenant = new Map<string, number>()
      const increment = (counts: Map<string, number>, key: string) => counts.set(key, (counts.get(key) ?? 0) + 1)
      const decrement = (counts: Map<string, number>, key: string) => {
        const left = (counts.get(key) ?? 1) - 1
        if (left <= 0) counts.delete(key)
        else counts.set(key, left)
      }
      const sendStarted = (row: ClaimedRow) => {
        inFlight++
        increment(perEndpoint, row.endpoint_id)
        increment(perTenant, row.tenant_id)
      }
      let finishedSinceClaim = 0
      const sendEnded = (row: ClaimedRow) => {
        inFlight--
        finishedSinceClaim++
        decrement(perEndpoint, row.endpoint_id)
        decrement(perTenant, row.tenant_id)
      }

      // While more is due than the last claim could take, a send or two finished since then wait a few milliseconds
      // for others to join them: one claim per handful of sends, not one per send (a claim looks at every endpoint with
      // pending deliveries, so it costs more than the send it refills).
      const refillBatch = Math.max(1, Math.ceil(settings.concurrency / 8))
      const refillWait = Duration.millis(5)
      let moreDue = false
      const loop = Effect.gen(function* () {
        while (true) {
          if (moreDue && finishedSinceClaim < refillBatch) yield* Effect.sleep(refillWait)
          finishedSinceClaim = 0
          const free = settings.concurrency - inFlight
          if (free <= 0) {
            yield* waitForWork
            continue
          }
          const rows = yield* claimDue(sql, {
            limit: free,
            busyEndpoints: perEndpoint,
            busyTenants: perTenant,
            endpointConcurrency: settings.endpointConcurrency,
            tenantConcurrency: settings.tenantConcurrency,
            leaseSeconds,
            workerId
          }).pipe(
            Effect.catchCause((cause) =>
              Effect.logWarning("delivery: claiming failed; trying again at the next poll", cause).pipe(
                Effect.as([] as ReadonlyArray<ClaimedRow>)
              )
            )
          )
          for (const row of rows) {
            sendStarted(row)
            yield* FiberSet.run(
              sends,
              deliver(row).pipe(
                Effect.ensuring(
                  Effect.suspend(() => {
                    sendEnded(row)
                    return wake
                  })
                )
              )
            )
          }
          // The claim looks at every endpoint with room at once: fewer rows than free slots, none of them filling its
          // tenant's share, means nothing else is due that this process may take now.
          moreDue =
            rows.length === free || rows.some((row) => perTenant.get(row.tenant_id) === settings.tenantConcurrency)
          if (!moreDue) yield* waitForWork
        }
      })

      const listenerReady = yield* Deferred.make<void>()
      const listener = Effect.gen(function* () {
        const notifications = yield* pg.listen(deliveryChannel)
        yield* Deferred.succeed(listenerReady, undefined)
        // Anything published while not listening is found by this first look.
        yield* wake
        return yield* Effect.forever(Queue.take(notifications).pipe(Effect.andThen(wake)))
      }).pipe(
        Effect.scoped,
        Effect.tapCause((cause) => Effect.logWarning("delivery: LISTEN failed; polling until it is back", cause)),
        Effect.retry(Schedule.spaced(settings.pollInterval)),
        Effect.ignore
      )

      const loopFiber = yield* Effect.forkDetach(loop)
      const listenerFiber = listening ? Option.some(yield* Effect.forkDetach(listener)) : Option.none()

      // Shutdown: stop claiming, let in-flight sends finish (at most one send timeout, within SHUTDOWN_TIMEOUT), then
      // release the leases still held so another worker takes those deliveries at once. Registered as soon as the
      // fibers exist: a shutdown that interrupts the rest of this startup (the wait for LISTEN below) must still stop
      // them, or the detached claim loop would keep the process alive after "shutdown complete".
      yield* Effect.addFinalizer(() =>
        Effect.gen(function* () {
          yield* Fiber.interrupt(loopFiber)
          if (Option.isSome(listenerFiber)) yield* Fiber.interrupt(listenerFiber.value)
          const pending = yield* FiberSet.size(sends)
          yield* Effect.logInfo("delivery worker: draining, stopped claiming; waiting for in-flight sends").pipe(
            Effect.annotateLogs({ inFlight: pending })
          )
          const drain = Duration.min(Duration.sum(settings.timeout, Duration.seconds(1)), config.shutdownTimeout)
          yield* FiberSet.awaitEmpty(sends).pipe(Effect.timeoutOption(drain))
          yield* FiberSet.clear(sends)
          const released = yield* sql`
          UPDATE deliveries SET locked_until = NULL, locked_by = NULL, updated_at = now()
          WHERE locked_by = ${workerId} AND status = 'pending' RETURNING id`.pipe(
            Effect.catchCause((cause) =>
              Effect.logWarning("delivery worker: could not release its leases; they expire by themselves", cause).pipe(
                Effect.as([])
              )
            )
          )
          yield* Effect.logInfo("delivery worker: stopped").pipe(
            Effect.annotateLogs({ leasesReleased: released.length })
          )
        })
      )

      if (listening) {
        const ready = yield* Deferred.await(listenerReady).pipe(Effect.timeoutOption(Duration.seconds(5)))
        if (Option.isNone(ready))
          yield* Effect.logWarning("delivery: LISTEN not confirmed after 5 s; polling meanwhile")
      }
      yield* Effect.logInfo("delivery worker started").pipe(
        Effect.annotateLogs({
          workerId,
          listening,
          concurrency: settings.concurrency,
          tenantConcurrency: settings.tenantConcurrency,
          endpointConcurrency: settings.endpointConcurrency
        })
      )

      return DeliveryWorker.of({
        workerId,
        wake,
        inFlight: Effect.sync(() => inFlight),
        listening
      })
    })
  )

/**
 * The worker with its own outbound HTTP client (undici: keep-alive pools, never follows redirects, the connect-time SSRF
 * guard unless private networks are allowed). Needs the database, configuration, metrics, the URL policy and the
 * endpoints' circuits of the process (shared with the API, which shows them as endpoint health).
 */
const DeliveryWorkerWithClient: Layer.Layer<DeliveryWorker, never, WorkerRequirements> = DeliveryWorkerLive.pipe(
  Layer.provide(DeliveryHttpClientLive)
)

/** The worker on its own (`npm run worker`), with the system resolver's URL policy. */
export const DeliveryWorkerDefault: Layer.Layer<
  DeliveryWorker,
  never,
  AppConfig | SqlClient.SqlClient | PgClient.PgClient | Metrics | EndpointCircuits | SecretBox | DeliveryWakeups
> = DeliveryWorkerWithClient.pipe(Layer.provide(UrlPolicyLive))

/** In the API process: the worker unless `DELIVERY_WORKER=false`, with the URL policy the API uses. */
export const DeliveryWorkerInServer: Layer.Layer<never, never, WorkerRequirements> = Layer.effectDiscard(
  Effect.gen(function* () {
    const config = yield* AppConfig
    // Built in this layer's scope, so the worker stops (and releases its leases) when the layer is torn down.
    if (config.delivery.worker) yield* Layer.build(DeliveryWorkerWithClient)
  })
)
