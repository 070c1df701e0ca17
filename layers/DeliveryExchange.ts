import { Effect, Exit, Option, Schema, Tracer } from "effect"
import type { AppConfigShape } from "../services/AppConfig.ts"
import { type CircuitRejected, CircuitVerdict, type EndpointCircuitsShape } from "../services/EndpointCircuits.ts"
import { type SecretBoxShape, SecretContext, type SecretUnreadable } from "../services/SecretBox.ts"
import { destinationNotPermitted, type UrlPolicyShape } from "../services/UrlPolicy.ts"
import type { WebhookSenderShape } from "../services/WebhookSender.ts"
import { isTransientStatus } from "../src/domain/CircuitPolicy.ts"
import {
  invalidStatusError,
  isHttpStatus,
  outcomeOfStatus,
  parseTraceparent,
  webhookBody
} from "../src/domain/Delivery.ts"
import type { AttemptResult } from "../src/domain/DeliveryDecision.ts"
import { parseRetryAfter } from "../src/domain/RetryPolicy.ts"
import { basicAuthTarget } from "../src/domain/UrlCredentials.ts"
import { type SigningSecret, signingKeyObject, webhookHeaders } from "../src/domain/WebhookSignature.ts"
import type { ClaimedRow, SendableRow } from "./DeliveryClaim.ts"

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

type SigningKeys = readonly [SigningSecret, ...ReadonlyArray<SigningSecret>]

/** How many endpoints' opened signing keys a worker keeps. */
const signingKeyCacheSize = 10_000

/** Keeps `value` under `key`, the oldest entry dropped once `signingKeyCacheSize` are kept. */
const remember = <V>(cache: Map<string, V>, key: string, value: V): void => {
  if (cache.size >= signingKeyCacheSize) cache.delete(cache.keys().next().value ?? "")
  cache.set(key, value)
}

/** An endpoint's custom headers as EndpointsLive seals them: one JSON object of names to values. */
const decodeStoredHeaders = Schema.decodeUnknownEffect(
  Schema.fromJsonString(Schema.Record(Schema.String, Schema.String))
)

export interface DeliveryExchangeOptions {
  readonly config: AppConfigShape
  readonly sender: WebhookSenderShape
  readonly urlPolicy: UrlPolicyShape
  readonly circuits: EndpointCircuitsShape
  readonly box: SecretBoxShape
}

/**
 * The HTTP side of a delivery: opens the endpoint's signing secrets, checks the URL again right before sending (DNS
 * answers change), signs and POSTs the webhook within `DELIVERY_TIMEOUT`, reads a bounded excerpt of the answer and
 * classifies it, all inside the endpoint's circuit and a `webhook.deliver` client span. Never fails: every problem is
 * an outcome. `sent` runs as soon as the request itself is over (answered, failed, timed out or refused by the SSRF
 * guard), before the circuit records its outcome: nothing is in flight to the receiver any more. After a 410 Gone it
 * does not run: the caller frees the endpoint's slot once the endpoint is disabled.
 */
export const makeDeliveryExchange = (
  options: DeliveryExchangeOptions
): ((row: SendableRow, sent?: Effect.Effect<void>) => Effect.Effect<Exchange>) => {
  const { config, sender, urlPolicy, circuits, box } = options
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

  /**
   * The HMAC keys of an endpoint's secrets as they are stored, opened once and kept (the most recent
   * `signingKeyCacheSize` sets): opening (AES-GCM) and importing a key cost more per delivery than signing. A rotated
   * secret is stored anew, so it is a new entry; one that cannot be opened is never kept.
   */
  const openedKeys = new Map<string, SigningKeys>()
  const signingKeys = (row: ClaimedRow, sealed: string): Effect.Effect<SigningKeys, SecretUnreadable> => {
    const cacheKey = `${row.endpoint_id}\n${sealed}\n${row.previous_secret ?? ""}`
    const cached = openedKeys.get(cacheKey)
    if (cached !== undefined) return Effect.succeed(cached)
    return Effect.map(signingSecrets(row, sealed), ([current, ...rest]) => {
      const keys: SigningKeys = [signingKeyObject(current), ...rest.map(signingKeyObject)]
      remember(openedKeys, cacheKey, keys)
      return keys
    })
  }

  /**
   * The endpoint's custom headers (EndpointHeaders), opened once per sealed value and kept like the signing keys;
   * none for most endpoints (a NULL column: nothing to open).
   */
  const openedHeaders = new Map<string, Readonly<Record<string, string>>>()
  const noHeaders: Readonly<Record<string, string>> = {}
  const customHeaders = (row: ClaimedRow): Effect.Effect<Readonly<Record<string, string>>, SecretUnreadable> => {
    const sealed = row.endpoint_headers
    if (sealed === null) return Effect.succeed(noHeaders)
    const cached = openedHeaders.get(sealed)
    if (cached !== undefined) return Effect.succeed(cached)
    return box.open(sealed, SecretContext.endpointHeaders(row.endpoint_id)).pipe(
      // Sealed by EndpointsLive from a checked object: anything else is corrupt data, a defect.
      Effect.flatMap((text) => Effect.orDie(decodeStoredHeaders(text))),
      Effect.map((stored) => {
        // Lower-cased, so that the headers codex-api sets after them replace them whatever their spelling.
        const headers = Object.fromEntries(Object.entries(stored).map(([name, value]) => [name.toLowerCase(), value]))
        remember(openedHeaders, sealed, headers)
        return headers
      })
    )
  }

  /** The HTTP request itself: at most `DELIVERY_TIMEOUT` for connect, send, headers and the body excerpt. */
  const send = (row: SendableRow, secrets: SigningKeys, custom: Readonly<Record<string, string>>, tracing: boolean) =>
    Effect.gen(function* () {
      const body = webhookBody(row.event_type, row.event_occurred_at, row.event_data)
      const headers = webhookHeaders(secrets, row.event_id, Date.now() / 1000, body)
      // Tracing on, the receiver gets the attempt span's own `traceparent` (a child of the stored one). Tracing off,
      // spans are random and unrelated: the publisher's `traceparent` goes on unchanged, or none.
      const traceparent = !tracing
        ? row.traceparent
        : Option.match(yield* Effect.option(Effect.currentSpan), {
            onNone: () => row.traceparent,
            onSome: (span) => `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`
          })
      // Credentials in the URL become Basic authentication (a client would drop them without a word).
      const target = basicAuthTarget(row.url)
      const response = yield* sender
        .post({
          url: target.url,
          // The endpoint's own first: every header codex-api sets comes after, and none can be overridden (the
          // names are refused when saved, case-insensitively).
          headers: {
            ...custom,
            ...headers,
            ...(traceparent === null ? {} : { traceparent }),
            ...(target.authorization === undefined ? {} : { authorization: target.authorization }),
            "content-type": "application/json",
            "user-agent": userAgent
          },
          body,
          timeout
        })
        .pipe(Effect.result)
      if (response._tag === "Failure") {
        const failure = response.failure
        if (failure.reason === "timeout") return noResponse("timeout", failure.detail)
        if (failure.reason === "network") return noResponse("network_error", failure.detail)
        // As at the URL check: the detail (it names the address a name resolved to) is for development and logs.
        yield* Effect.logDebug("delivery blocked at connect time").pipe(
          Effect.annotateLogs({ deliveryId: row.id, reason: failure.detail })
        )
        return noResponse(
          "blocked",
          config.appEnv === "development"
            ? `address not allowed at connect time: ${failure.detail}`
            : `URL not allowed: ${destinationNotPermitted}`
        )
      }
      const { status, excerpt, retryAfter } = response.success
      if (!isHttpStatus(status)) {
        return {
          outcome: "failed",
          statusCode: null,
          error: invalidStatusError(status),
          excerpt,
          retryAfter: Option.none()
        } satisfies AttemptResult
      }
      return {
        outcome: outcomeOfStatus(status),
        statusCode: status,
        error: null,
        excerpt,
        retryAfter: parseRetryAfter(retryAfter, Date.now())
      } satisfies AttemptResult
    })

  /** The SSRF guard again, right before sending, then the request, in the attempt's client span. */
  const attempt = (
    row: SendableRow,
    secrets: SigningKeys,
    custom: Readonly<Record<string, string>>,
    number: number,
    tracing: boolean
  ) => {
    const checkedAndSent = urlPolicy.check(row.url).pipe(
      Effect.matchEffect({
        onFailure: (blocked) => Effect.succeed(noResponse("blocked", `URL not allowed: ${blocked.reason}`)),
        onSuccess: () => send(row, secrets, custom, tracing)
      })
    )
    // Tracing off (Effect's native tracer), the span would be exported nowhere: not made at all.
    if (!tracing) return checkedAndSent
    const parent = parseTraceparent(row.traceparent)
    return checkedAndSent.pipe(
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
      Effect.withSpan(
        "webhook.deliver",
        {
          kind: "client",
          attributes: {
            ...clientSpanAttributes(row.url),
            "codex.delivery.id": row.id,
            "codex.delivery.attempt": number,
            "codex.event.id": row.event_id,
            "codex.endpoint.id": row.endpoint_id
          },
          ...(parent === undefined ? {} : { parent: Tracer.externalSpan(parent) })
        },
        // Always the same place in this file: not worth an Error's stack at every attempt.
        { captureStackTrace: false }
      )
    )
  }

  return (row, sent = Effect.void) =>
    Effect.gen(function* () {
      const tracing = (yield* Effect.tracer) !== Tracer.nativeTracer
      const startedAt = new Date()
      const started = performance.now()
      const secrets = yield* signingKeys(row, row.secret ?? "").pipe(Effect.result)
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
      const custom = yield* customHeaders(row).pipe(Effect.result)
      if (custom._tag === "Failure") {
        // As for the signing secret: a key missing from ENCRYPTION_KEYS; failed without sending, retried later.
        yield* Effect.logError(
          "delivery: the endpoint's custom headers cannot be opened; attempt recorded as failed"
        ).pipe(
          Effect.annotateLogs({
            deliveryId: row.id,
            endpointId: row.endpoint_id,
            reason: custom.failure.reason,
            keyId: custom.failure.keyId
          })
        )
        return {
          _tag: "Attempted",
          result: noResponse("failed", "the endpoint's custom headers cannot be decrypted (ENCRYPTION_KEYS)"),
          startedAt,
          durationMs: 0
        } satisfies Exchange
      }
      // One attempt (its timeout included) is one outcome for the endpoint's circuit; retries happen across claims.
      const guarded = yield* circuits
        .guard(
          row.endpoint_id,
          // Not after a 410 Gone: the endpoint is about to be disabled, and its next delivery must not go out before.
          attempt(row, secrets.success, custom.success, row.attempt_count + 1, tracing).pipe(
            Effect.onExit((exit) => (Exit.isSuccess(exit) && exit.value.outcome === "gone" ? Effect.void : sent))
          ),
          circuitVerdict
        )
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
