import { Context, type Duration, type Effect, type Schema } from "effect"
import type { SqlError, Statement } from "effect/sql"
import type { SecretUnreadable } from "./SecretBox.ts"

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
 * The outcome of a claim. `Claimed` carries the token that fences the completion: a completion or release only applies
 * while the row still carries it (a claim reclaimed by another request after the lock timeout is no longer ours).
 */
export type ClaimResult =
  | { readonly _tag: "Claimed"; readonly token: string }
  | { readonly _tag: "Completed"; readonly response: StoredResponse }
  /**
   * Completed by a handler in its own write statement: `ref` is its record of what it answered (see OwnWrite). Only
   * that handler can answer from it: the fingerprint binds the key to the method and path that completed it.
   */
  | { readonly _tag: "CompletedByHandler"; readonly ref: Schema.Json }
  | { readonly _tag: "InProgress" }
  | { readonly _tag: "Mismatch" }

export interface IdempotencyStoreShape {
  /**
   * Claims the key with one statement, or reports what holds it. A completed key past its expiry and an in-progress
   * claim older than `lockTimeout` are reclaimed. A key held with another fingerprint is `Mismatch`, whatever its state.
   * A stored response that cannot be opened (sealed under a key no longer configured) is `SecretUnreadable`.
   */
  readonly claim: (request: IdempotencyRequest) => Effect.Effect<ClaimResult, SqlError.SqlError | SecretUnreadable>
  /**
   * Stores the response (its body sealed) and marks the key completed; run it inside the business write's transaction. `false` when
   * the claim is no longer ours (the caller must then roll the transaction back). A completed key holds exactly one
   * answer (a CHECK since migration 0009): this one clears any ref, as OwnWrite's completion clears any stored response.
   */
  readonly complete: (
    request: IdempotencyRequest,
    token: string,
    response: StoredResponse
  ) => Effect.Effect<boolean, SqlError.SqlError>
  /**
   * The SQL with which a handler completes our claim inside its own write statement, instead of a transaction
   * around the write and `complete` (two round trips fewer on the hot path).
   */
  readonly ownWrite: (request: IdempotencyRequest, token: string) => OwnWrite
  /** Deletes our claim (a failed request), so a retry with the same key can run. */
  readonly release: (request: IdempotencyRequest, token: string) => Effect.Effect<void, SqlError.SqlError>
  /** Deletes at most `batchSize` expired rows; returns how many. */
  readonly purgeExpired: (batchSize: number) => Effect.Effect<number, SqlError.SqlError>
  /** How long a completed key is remembered. */
  readonly ttl: Duration.Duration
  /** After this long an in-progress claim counts as crashed and can be reclaimed. */
  readonly lockTimeout: Duration.Duration
}

/**
 * Completing a claim inside the handler's own write statement, as two CTEs of it: `held` yields one row while the
 * claim is still ours and locks the key row until the statement commits (so no one takes it over in between): the
 * write must select FROM it, so that it writes nothing once the claim is lost. `complete(ref)` is an UPDATE marking
 * the key completed with `ref` (jsonb): the handler's own record of its answer, from which it answers a replay again.
 * One statement is atomic: the write and the completed key commit together or not at all.
 */
export interface OwnWrite {
  readonly held: Statement.Fragment
  readonly complete: (ref: Statement.Fragment) => Statement.Fragment
}

/** Idempotency keys in PostgreSQL, shared by every replica. */
export class IdempotencyStore extends Context.Service<IdempotencyStore, IdempotencyStoreShape>()(
  "codex/IdempotencyStore"
) {}
