import { Duration, Effect, Option, Stream, Tracer } from "effect"
import { HttpClient, type HttpClientError, HttpClientRequest, type HttpClientResponse } from "effect/http"
import type { AppConfigShape } from "../services/AppConfig.ts"
import { type CircuitRejected, CircuitVerdict, type EndpointCircuitsShape } from "../services/EndpointCircuits.ts"
import { type SecretBoxShape, SecretContext } from "../services/SecretBox.ts"
import { destinationNotPermitted, type UrlPolicyShape } from "../services/UrlPolicy.ts"
import { isTransientStatus } from "../src/domain/CircuitPolicy.ts"
import {
  invalidStatusError,
  isHttpStatus,
  outcomeOfStatus,
  parseTraceparent,
  responseExcerptBytes,
  storableExcerpt,
  webhookBody
} from "../src/domain/Delivery.ts"
import type { AttemptResult } from "../src/domain/DeliveryDecision.ts"
import { parseRetryAfter } from "../src/domain/RetryPolicy.ts"
import { basicAuthTarget } from "../src/domain/UrlCredentials.ts"
import { webhookHeaders } from "../src/domain/WebhookSignature.ts"
import type { ClaimedRow } from "./DeliveryClaim.ts"
import { blockedAtConnect } from "./DeliveryHttpClient.ts"

/** The attempt's error when the endpoint's secret cannot be opened: for the tenant, without the operator's details. */
const unreadableSecretError =
  "not sent: the endpoint's signing secret cannot be decrypted (server key configuration); retried like a failure"

/**
 * What one exchange came to: an attempt (sent, or refused by the SSRF guard, or not signable: all use up an attempt),
 * or nothing at all because the endpoint's circuit refused it.
 */
export type Exchange =
  | {
      readonly _tag: "Attempted"
      readonly result: AttemptResult
      readonly startedAt: Date
      readonly durationMs: number
    }
  | { readonly _tag: "Refused"; readonly rejected: CircuitRejected }

/**
 * What an attempt tells the endpoint's circuit, after Polly's transient-failure predicate: network errors, timeouts,
 * 408, 429 and 5xx count against the receiver (with its Retry-After as a hint for how long to stay open); any other
 * answer, 3xx and 4xx included, shows a receiver that is up (those deliveries still fail and retry on their own); an
 * attempt the SSRF guard refused sent nothing, so it says nothing.
 */
export const circuitVerdict = (result: AttemptResult): CircuitVerdict => {
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

const noResponse = (outcome: AttemptResult["outcome"], error: string): AttemptResult => ({
  outcome,
  statusCode: null,
  error: error.slice(0, 1024),
  excerpt: null,
  retryAfter: Option.none()
})

export interface DeliveryExchangeOptions {
  readonly config: AppConfigShape
  readonly client: HttpClient.HttpClient
  readonly urlPolicy: UrlPolicyShape
  readonly circuits: EndpointCircuitsShape
  readonly box: SecretBoxShape
}

/**
 * The HTTP side of a delivery: opens the endpoint's signing secrets, checks the URL again right before sending (DNS
 * answers change), signs and POSTs the webhook within `DELIVERY_TIMEOUT`, reads a bounded excerpt of the answer and
 * classifies it, all inside the endpoint's circuit and a `webhook.deliver` client span. Never fails: every problem is
 * an outcome.
 */
export const makeDeliveryExchange = (
  options: DeliveryExchangeOptions
): ((row: ClaimedRow) => Effect.Effect<Exchange>) => {
  const { config, client, urlPolicy, circuits, box } = options
  const timeout = config.delivery.timeout
  const userAgent = `codex-api/${config.version}`

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
      const result = yield* exchange.pipe(Effect.timeoutOption(timeout), Effect.result)
      if (result._tag === "Failure") {
        const blocked = blockedAtConnect(result.failure)
        if (blocked === undefined) return noResponse("network_error", describeClientError(result.failure))
        // As at the URL check: the detail (it names the address a name resolved to) is for development and logs.
        yield* Effect.logDebug("delivery blocked at connect time").pipe(
          Effect.annotateLogs({ deliveryId: row.id, reason: blocked })
        )
        return noResponse(
          "blocked",
          config.appEnv === "development"
            ? `address not allowed at connect time: ${blocked}`
            : `URL not allowed: ${destinationNotPermitted}`
        )
      }
      if (Option.isNone(result.success)) {
        return noResponse("timeout", `no complete response within ${Duration.format(timeout)}`)
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

  /** The SSRF guard again, right before sending, then the request, in the attempt's client span. */
  const attempt = (row: ClaimedRow, secrets: readonly [string, ...ReadonlyArray<string>], number: number) => {
    const parent = parseTraceparent(row.traceparent)
    return urlPolicy.check(row.url).pipe(
      Effect.matchEffect({
        onFailure: (blocked) => Effect.succeed(noResponse("blocked", `URL not allowed: ${blocked.reason}`)),
        onSuccess: () => send(row, secrets)
      }),
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
  }

  return (row) =>
    Effect.gen(function* () {
      const startedAt = new Date()
      const started = performance.now()
      const secrets = yield* signingSecrets(row, row.secret ?? "").pipe(Effect.result)
      if (secrets._tag === "Failure") {
        // Nothing can be signed (a key missing from ENCRYPTION_KEYS): a failed attempt without sending, so the
        // delivery backs off and retries like any failure (and recovers once the key is configured again).
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
        return {
          _tag: "Attempted",
          result: noResponse("failed", unreadableSecretError),
          startedAt,
          durationMs: 0
        } satisfies Exchange
      }
      // One attempt (its timeout included) is one outcome for the endpoint's circuit; retries happen across claims.
      const guarded = yield* circuits
        .guard(row.endpoint_id, attempt(row, secrets.success, row.attempt_count + 1), circuitVerdict)
        .pipe(Effect.result)
      if (guarded._tag === "Failure") return { _tag: "Refused", rejected: guarded.failure } satisfies Exchange
      return {
        _tag: "Attempted",
        result: guarded.success,
        startedAt,
        durationMs: Math.round(performance.now() - started)
      } satisfies Exchange
    })
}
