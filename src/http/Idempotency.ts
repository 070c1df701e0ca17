import { createHash } from "node:crypto"
import { Cause, Context, Data, Duration, Effect, Exit, Layer, Option } from "effect"
import { HttpServerRequest, HttpServerRespondable, HttpServerResponse } from "effect/http"
import { HttpApiError } from "effect/http-api"
import { SqlClient, SqlError } from "effect/sql"
import { AppConfig } from "../../services/AppConfig.ts"
import {
  adminScope,
  type IdempotencyRequest,
  IdempotencyStore,
  type KeyClaim,
  type StoredResponse
} from "../../services/IdempotencyStore.ts"
import { Metrics } from "../../services/Metrics.ts"
import { CompletesOwnKey, Idempotency, KeyedRequest } from "../api/Idempotency.ts"
import { BadRequest, Conflict, UnprocessableContent } from "../api/Problems.ts"
import { CurrentTenant } from "../api/Security.ts"
import { minifyJson } from "../domain/JsonText.ts"
import { pathOf } from "../domain/RequestPath.ts"

const visibleAscii = /^[\x21-\x7E]{1,255}$/

/**
 * The key of an `Idempotency-Key` header value: a Structured Field string (`"abc"`, RFC 8941 §3.3.3, escapes `\"` and
 * `\\`, no parameters) or, as many clients send it, a bare value. Either way the key is 1..255 visible ASCII
 * characters (no spaces). Several headers arrive joined by `, ` and are rejected by the same rules. `undefined` =
 * malformed.
 */
export const parseIdempotencyKey = (raw: string): string | undefined => {
  const value = raw.replace(/^[ \t]+|[ \t]+$/g, "")
  if (!value.startsWith('"')) return visibleAscii.test(value) ? value : undefined
  let key = ""
  for (let i = 1; i < value.length; i++) {
    const char = value[i] as string
    if (char === "\\") {
      const next = value[i + 1]
      if (next !== '"' && next !== "\\") return undefined
      key += next
      i++
    } else if (char === '"') {
      return i === value.length - 1 && visibleAscii.test(key) ? key : undefined
    } else {
      const code = char.charCodeAt(0)
      if (code < 0x20 || code > 0x7e) return undefined
      key += char
    }
  }
  return undefined
}

const sha256 = (data: string | Uint8Array): string => createHash("sha256").update(data).digest("hex")

const utf8 = new TextDecoder("utf-8", { fatal: true })

/**
 * SHA-256 of the body as minified text (JsonText): insignificant whitespace aside, the same bytes. Member order, number
 * text and escapes count, since `data` is delivered with them (`{"a":1,"b":2}` and `{"b":2,"a":1}` are different
 * requests). A body that is not valid UTF-8 is digested as its raw bytes.
 */
export const bodyDigest = (body: Uint8Array): string => {
  let text: string
  try {
    text = utf8.decode(body)
  } catch {
    return sha256(body)
  }
  return sha256(minifyJson(text))
}

/** Method + path + body digest: what a key must be reused with. The path carries the resource (`/v1/endpoints/ep_1`). */
export const fingerprintOf = (method: string, path: string, body: Uint8Array): string =>
  sha256(`${method}\n${path}\n${bodyDigest(body)}`)

/** The response to store, or `undefined` when it must not be (>= 500) or cannot be (a streamed or non-text body). */
const toStored = (response: HttpServerResponse.HttpServerResponse): StoredResponse | undefined => {
  if (response.status >= 500) return undefined
  const body = response.body
  const headers: Record<string, string> = { ...response.headers }
  let text: string
  if (body._tag === "Empty") text = ""
  else if (body._tag === "Uint8Array") {
    try {
      text = utf8.decode(body.body)
    } catch {
      return undefined
    }
    if (body.contentType !== undefined) headers["content-type"] = body.contentType
  } else return undefined
  return { status: response.status, headers, body: text }
}

/** The stored response again, marked as a replay. */
const replay = (stored: StoredResponse): HttpServerResponse.HttpServerResponse => {
  const { "content-type": contentType, ...headers } = stored.headers
  const replayHeaders = { ...headers, "idempotent-replayed": "true" }
  if (contentType === undefined && stored.body === "") {
    return HttpServerResponse.empty({ status: stored.status, headers: replayHeaders })
  }
  return HttpServerResponse.text(stored.body, {
    status: stored.status,
    headers: replayHeaders,
    ...(contentType === undefined ? {} : { contentType })
  })
}

/** Our claim was taken over (we ran past the lock timeout): the transaction must roll back. */
class ClaimLost extends Data.TaggedError("ClaimLost") {}

/**
 * A typed error of the handler that is stored like a response: a problem below 500 (404, 422...). Request decoding
 * failures (400 from the schema) are not: the request never ran, and its key is released.
 */
const storableFailure = (cause: Cause.Cause<unknown>): HttpServerRespondable.Respondable | undefined => {
  const failure = cause.reasons.find(Cause.isFailReason)
  if (failure === undefined || cause.reasons.some((reason) => !Cause.isFailReason(reason))) return undefined
  const error = failure.error
  if (HttpApiError.HttpApiSchemaError.is(error) || HttpApiError.HttpApiPayloadTooLarge.is(error)) return undefined
  return HttpServerRespondable.isRespondable(error) ? error : undefined
}

/**
 * The Idempotency-Key middleware. Without a key the request runs as usual (unless the key is required). With one, the
 * key is claimed in one statement (committed at once, so concurrent duplicates see it), then the handler and the
 * stored response commit in ONE transaction: a crash leaves both or neither, and a claim whose process died becomes
 * reclaimable after IDEMPOTENCY_LOCK_TIMEOUT. Failures that are not a stored 4xx release the key. An endpoint annotated
 * `CompletesOwnKey` gets no transaction: its handler completes the key in its own write statement (KeyedRequest) and
 * answers replays from what that statement stored.
 */
export const IdempotencyLive: Layer.Layer<
  Idempotency,
  never,
  IdempotencyStore | AppConfig | Metrics | SqlClient.SqlClient
> = Layer.effect(
  Idempotency,
  Effect.gen(function* () {
    const store = yield* IdempotencyStore
    const config = yield* AppConfig
    const sql = yield* SqlClient.SqlClient
    const metrics = config.metricsEnabled ? yield* Metrics : undefined
    const lockTimeout = Duration.format(store.lockTimeout)

    /** After a request that failed: its 4xx refusal is stored (nothing was written), anything else releases the key. */
    const settleFailure = (cause: Cause.Cause<unknown>, claim: KeyClaim) => {
      const release = store.release(claim)
      const respondable = storableFailure(cause)
      if (respondable === undefined) return release
      return HttpServerRespondable.toResponse(respondable).pipe(
        Effect.flatMap((response) => {
          const stored = toStored(response)
          return stored === undefined ? release : store.complete(claim, stored)
        })
      )
    }

    const claimLostConflict = () =>
      new Conflict({
        detail: `The request took longer than ${lockTimeout} (IDEMPOTENCY_LOCK_TIMEOUT) and a retry with the same Idempotency-Key took it over; nothing was changed by this one.`
      })

    /**
     * The handler and the stored response in one transaction, which holds a pooled connection for the handler's whole
     * run: a handler behind this middleware must not wait on the network (DNS, HTTP, Redis). Whatever it needs from the
     * network is fetched by a middleware outside this one (EndpointPreflight for the webhook URL and the circuit).
     */
    const runClaimed = <E, R>(
      httpEffect: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>,
      claim: KeyClaim
    ) =>
      sql
        .withTransaction(
          Effect.gen(function* () {
            const response = yield* httpEffect
            const stored = toStored(response)
            if (stored === undefined) return { response, stored: false }
            const completed = yield* store.complete(claim, stored)
            if (!completed) return yield* new ClaimLost()
            return { response, stored: true }
          })
        )
        .pipe(
          // BEGIN/COMMIT failing is the database's trouble, not the client's: a defect (503 when unreachable).
          Effect.catchIf(SqlError.isSqlError, (error) => Effect.die(error)),
          Effect.onExit((exit) => {
            if (Exit.isSuccess(exit)) {
              return exit.value.stored ? Effect.void : store.release(claim)
            }
            if (exit.cause.reasons.some((r) => Cause.isFailReason(r) && r.error instanceof ClaimLost))
              return Effect.void
            // The handler refused (404, 422...): the transaction rolled back, nothing was written.
            return settleFailure(exit.cause, claim)
          }),
          Effect.map(({ response }) => response),
          Effect.catchIf((error): error is ClaimLost => error instanceof ClaimLost, claimLostConflict)
        )

    /**
     * A `CompletesOwnKey` endpoint: no transaction here; the handler's write statement completes the key itself (so a
     * success has completed it) or writes nothing when the claim is lost.
     */
    const runOwnWrite = <E, R>(
      httpEffect: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>,
      claim: KeyClaim
    ) =>
      Effect.suspend(() => {
        const claimLost = claimLostConflict()
        return httpEffect.pipe(
          Effect.provideService(KeyedRequest, { _tag: "Run", claim, claimLost }),
          Effect.onExit((exit) => {
            if (Exit.isSuccess(exit)) return Effect.void
            // Lost: the key is someone else's now (release and complete are fenced by our token anyway).
            if (exit.cause.reasons.some((r) => Cause.isFailReason(r) && r.error === claimLost)) return Effect.void
            return settleFailure(exit.cause, claim)
          })
        )
      })

    return Idempotency.of((httpEffect, { endpoint, group }) =>
      Effect.gen(function* () {
        const httpRequest = yield* HttpServerRequest.HttpServerRequest
        const header = httpRequest.headers["idempotency-key"]
        if (header === undefined) {
          if (config.idempotency.required && group.identifier === "events" && endpoint.identifier === "publish") {
            metrics?.idempotencyOutcome("missing")
            return yield* new BadRequest({ detail: "An Idempotency-Key header is required on this endpoint." })
          }
          return yield* httpEffect
        }
        const key = parseIdempotencyKey(header)
        if (key === undefined) {
          return yield* new BadRequest({
            detail:
              "The Idempotency-Key header must be one key of 1 to 255 visible ASCII characters, as a Structured Field string or a bare token."
          })
        }
        let scope = adminScope
        if (group.identifier !== "admin") {
          const tenant = yield* Effect.serviceOption(CurrentTenant)
          if (Option.isNone(tenant)) return yield* Effect.die(new Error("Idempotency applied outside TenantAuth"))
          scope = tenant.value.id
        }
        const body = new Uint8Array(yield* Effect.orDie(httpRequest.arrayBuffer))
        const path = pathOf(httpRequest.url)
        const request: IdempotencyRequest = {
          scope,
          key,
          fingerprint: fingerprintOf(httpRequest.method, path, body),
          method: httpRequest.method,
          path
        }
        const claim = yield* store.claim(request)
        switch (claim._tag) {
          case "Completed":
            metrics?.idempotencyOutcome("replayed")
            return replay(claim.response)
          case "CompletedByHandler":
            // A ref is an answer only a handler that completes its own key can render again (it is handed the ref).
            // Any other handler would not read it and would run the request a second time under a replay header.
            // Unreachable by construction (the fingerprint binds the key to its route, a reclaim clears the ref): a
            // ref here is corrupt data or a route that changed between versions, for an operator to see (500).
            if (!Context.get(endpoint.annotations, CompletesOwnKey)) {
              return yield* Effect.die(
                new Error(
                  `an idempotency key completed with a ref was claimed on ${request.method} ${request.path}, a route that does not complete its own key`
                )
              )
            }
            metrics?.idempotencyOutcome("replayed")
            return yield* httpEffect.pipe(
              Effect.provideService(KeyedRequest, { _tag: "Replay", ref: claim.ref }),
              Effect.map(HttpServerResponse.setHeader("idempotent-replayed", "true"))
            )
          case "InProgress":
            metrics?.idempotencyOutcome("in_progress")
            return yield* new Conflict({
              detail: "A request with this Idempotency-Key is still being processed; retry later."
            })
          case "Mismatch":
            metrics?.idempotencyOutcome("mismatch")
            return yield* new UnprocessableContent({
              detail: "This Idempotency-Key was already used for a different request (method, path or body)."
            })
          case "Claimed":
            metrics?.idempotencyOutcome("new")
            return yield* Context.get(endpoint.annotations, CompletesOwnKey)
              ? runOwnWrite(httpEffect, claim.claim)
              : runClaimed(httpEffect, claim.claim)
        }
      })
    )
  })
)
