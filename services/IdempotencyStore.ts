import { Context, type Duration, type Effect, type Schema } from "effect"

/** Whose keys: a tenant's (its id) or the admin API's (one fixed scope). */
export type IdempotencyScope = string

/** The scope of every `/admin` request. */
export const adminScope: IdempotencyScope = "admin"

/** What a request asks to claim: its key, and what identifies its content. */
export interface IdempotencyRequest {
  readonly scope: IdempotencyScope
  readonly key: string
  /** Hex SHA-256 over method, path and the SHA-256 of the canonical body. */
  readonly fingerprint: string
  readonly method: string
  readonly path: string
}

/** A response as stored and replayed (only statuses below 500 are ever stored). */
export interface StoredResponse {
  readonly status: number
  /** The headers that matter for a replay (content type and whatever the handler set). */
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

/**
 * A key this request holds: what the store needs to complete or release it. Opaque to everyone else: the middleware
 * hands it on, and only the store and the repositories that complete a key in their own write
 * (layers/IdempotencyKeySql.ts) turn it into SQL. `token` fences the completion: a completion or release only applies
 * while the row still carries it (a claim reclaimed by another request after the lock timeout is no longer ours).
 */
export interface KeyClaim {
  readonly _tag: "KeyClaim"
  readonly request: IdempotencyRequest
  readonly token: string
  /** How long the key is remembered once completed (IDEMPOTENCY_TTL). */
  readonly ttlSeconds: number
}

/** The outcome of a claim. */
export type ClaimResult =
  | { readonly _tag: "Claimed"; readonly claim: KeyClaim }
  | { readonly _tag: "Completed"; readonly response: StoredResponse }
  /**
   * Completed by a repository in its own write statement: `ref` is its record of what it answered. Only the handler
   * that wrote it can answer from it: the fingerprint binds the key to the method and path that completed it.
   */
  | { readonly _tag: "CompletedByHandler"; readonly ref: Schema.Json }
  | { readonly _tag: "InProgress" }
  | { readonly _tag: "Mismatch" }

/**
 * Database failures are defects here (layers/SqlFailures.ts), and so is a stored response that cannot be opened
 * (sealed under a key ENCRYPTION_KEYS no longer lists: the operator's to fix, reported at start-up).
 */
export interface IdempotencyStoreShape {
  /**
   * Claims the key with one statement, or reports what holds it. A completed key past its expiry and an in-progress
   * claim older than `lockTimeout` are reclaimed. A key held with another fingerprint is `Mismatch`, whatever its state.
   */
  readonly claim: (request: IdempotencyRequest) => Effect.Effect<ClaimResult>
  /**
   * Stores the response (its body sealed) and marks the key completed; run it inside the business write's
   * transaction. `false` when the claim is no longer ours (the caller must then roll the transaction back). A
   * completed key holds exactly one answer (a CHECK since migration 0009): this one clears any ref, as a repository's
   * own completion clears any stored response.
   */
  readonly complete: (claim: KeyClaim, response: StoredResponse) => Effect.Effect<boolean>
  /** Deletes our claim (a failed request), so a retry with the same key can run. */
  readonly release: (claim: KeyClaim) => Effect.Effect<void>
  /** Deletes at most `batchSize` expired rows; returns how many. */
  readonly purgeExpired: (batchSize: number) => Effect.Effect<number>
  /** How long a completed key is remembered. */
  readonly ttl: Duration.Duration
  /** After this long an in-progress claim counts as crashed and can be reclaimed. */
  readonly lockTimeout: Duration.Duration
}

/** Idempotency keys in PostgreSQL, shared by every replica. */
export class IdempotencyStore extends Context.Service<IdempotencyStore, IdempotencyStoreShape>()(
  "codex/IdempotencyStore"
) {}
