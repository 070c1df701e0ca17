import { Context, type Schema } from "effect"
import { HttpApiMiddleware } from "effect/http-api"
import type { KeyClaim } from "../../services/IdempotencyStore.ts"
import { BadRequest, Conflict, UnprocessableContent } from "./Problems.ts"

/**
 * `Idempotency-Key` on a state-changing endpoint (IETF draft-ietf-httpapi-idempotency-key-header): applied to every
 * POST and PATCH under `/v1` and `/admin`, and to DELETE /v1/events/{id}/data, inside the group's authentication (the key is scoped by tenant).
 *
 * - 400: the header is malformed, or missing where required (`IDEMPOTENCY_REQUIRED=true` on `POST /v1/events`);
 * - 409: a request with the same key is still being processed;
 * - 422: the key was used with a different request (method, path or body).
 */
export class Idempotency extends HttpApiMiddleware.Service<Idempotency>()("codex/Idempotency", {
  error: [BadRequest, Conflict, UnprocessableContent]
}) {}

/** Published in the OpenAPI description and the README (the draft requires the expiry policy to be published). */
export const idempotencyDescription =
  "State-changing requests (every POST and PATCH, and DELETE /v1/events/{id}/data) accept an `Idempotency-Key` " +
  'header (a Structured Field string such as `"8e03978e-40d5-43e8-bc93-6894a57f9324"` or a bare token; 1 to 255 ' +
  "visible ASCII characters). A retry with the " +
  "same key and the same request returns the stored status and body again with `Idempotent-Replayed: true`, without " +
  "repeating the effect. 409 while the first request is still running; 422 when the key was used for a different " +
  "request; 400 for a malformed key. Responses with status 500 or above are not stored, so a retry runs again. Keys " +
  "are scoped to the tenant and expire IDEMPOTENCY_TTL after the response (5 minutes by default)."

/**
 * Endpoint annotation: the handler completes its own Idempotency-Key inside its write statement (its repository
 * turns the claim into SQL: layers/IdempotencyKeySql.ts) instead
 * of the middleware wrapping it in a transaction with the stored response: the hot `POST /v1/events` then costs two
 * database round trips (claim, write) instead of five (claim, BEGIN, write, store the response, COMMIT).
 */
export const CompletesOwnKey = Context.Reference<boolean>("codex/Idempotency/CompletesOwnKey", {
  defaultValue: () => false
})

/**
 * What the handler of a `CompletesOwnKey` endpoint is given on a request with an Idempotency-Key: `Run` with the
 * claim to complete in its write, or `Replay` with the ref that write stored, to answer the same again (the middleware
 * marks the answer `Idempotent-Replayed`). Absent without a key.
 */
export type KeyedRun =
  /** `claimLost`: the answer when the write finds the claim taken over (it ran past the lock timeout). */
  | { readonly _tag: "Run"; readonly claim: KeyClaim; readonly claimLost: Conflict }
  | { readonly _tag: "Replay"; readonly ref: Schema.Json }

export class KeyedRequest extends Context.Service<KeyedRequest, KeyedRun>()("codex/Idempotency/KeyedRequest") {}
