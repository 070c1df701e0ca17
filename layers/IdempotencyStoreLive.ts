import { randomUUID } from "node:crypto"
import { Duration, Effect, Layer, Schedule, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { AppConfig } from "../services/AppConfig.ts"
import {
  type ClaimResult,
  type IdempotencyRequest,
  IdempotencyStore,
  type KeyClaim,
  type StoredResponse
} from "../services/IdempotencyStore.ts"
import { SecretBox, SecretContext } from "../services/SecretBox.ts"
import { expiresFromNow, ownedBy } from "./IdempotencyKeySql.ts"
import { sqlFailuresAsDefects } from "./SqlFailures.ts"
import { decodeRows } from "./SqlRows.ts"

/** The row holding a key, decoded (see `decodeRows`): `state` is an enum, the stored answer nullable jsonb. */
const HeldRow = Schema.Struct({
  fingerprint: Schema.String,
  state: Schema.Literals(["in_progress", "completed"]),
  /** Expired (and not a live claim): any request may take the key now. */
  forgotten: Schema.Boolean,
  /** A claim whose process died (in progress past the lock timeout): the same request may take it over. */
  crashed: Schema.Boolean,
  response_status: Schema.NullOr(Schema.Int),
  response_headers: Schema.NullOr(Schema.Record(Schema.String, Schema.String)),
  response_body: Schema.NullOr(Schema.String),
  response_ref: Schema.NullOr(Schema.Json)
})
const heldRows = decodeRows(HeldRow)
const claimedRows = decodeRows(Schema.Struct({ lock_token: Schema.String }))

/** A claim lost a race with a release or a purge this many times in a row: something is badly wrong. */
const maxClaimRounds = 5

export interface IdempotencyStoreOptions {
  readonly ttl: Duration.Duration
  readonly lockTimeout: Duration.Duration
}

/** Where a stored response lives, for the SecretBox: bound to its key and to the request it answers. */
const responseContext = (request: IdempotencyRequest) =>
  SecretContext.idempotencyResponse(request.scope, request.fingerprint, request.key)

/**
 * The store on the given SqlClient; every time is the database's, so replicas agree on expiry and lock age. Stored
 * response bodies are sealed (SecretBox): some show a secret once (an API key, a signing secret), and all are sealed
 * so no handler can forget to. The hot path's `response_ref` holds no secret and is not sealed.
 */
export const makeIdempotencyStore = (options: IdempotencyStoreOptions) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const box = yield* SecretBox
    const ttlSeconds = Duration.toMillis(options.ttl) / 1000
    const lockSeconds = Duration.toMillis(options.lockTimeout) / 1000
    const ttl = sql`make_interval(secs => ${ttlSeconds}::float8)`
    const lock = sql`make_interval(secs => ${lockSeconds}::float8)`

    /**
     * The claim itself: ONE statement, so two requests can never both own a key (no check-then-insert). An existing
     * row is taken over only when it is forgotten (expired, and not a live claim) or a crashed claim of the same
     * request (in progress for longer than the lock timeout, same fingerprint). Taking it over clears every trace of
     * the previous answer, stored response and ref alike: a ref left behind would be replayed as this request's
     * answer (the schema refuses it since migration 0009).
     */
    const tryClaim = (request: IdempotencyRequest, token: string) =>
      claimedRows(sql`
        INSERT INTO idempotency_keys AS k (scope, key, fingerprint, method, path, state, lock_token, locked_at, expires_at)
        VALUES (${request.scope}, ${request.key}, ${request.fingerprint}, ${request.method}, ${request.path},
                'in_progress', ${token}, now(), now() + ${ttl})
        ON CONFLICT (scope, key) DO UPDATE SET
          fingerprint = EXCLUDED.fingerprint, method = EXCLUDED.method, path = EXCLUDED.path, state = 'in_progress',
          lock_token = EXCLUDED.lock_token, locked_at = now(), response_status = NULL, response_headers = NULL,
          response_body = NULL, response_ref = NULL, created_at = now(), completed_at = NULL,
          expires_at = EXCLUDED.expires_at
        WHERE (k.expires_at <= now() AND (k.state = 'completed' OR k.locked_at <= now() - ${lock}))
           OR (k.state = 'in_progress' AND k.locked_at <= now() - ${lock} AND k.fingerprint = EXCLUDED.fingerprint)
        RETURNING lock_token`)

    const held = (request: IdempotencyRequest) =>
      heldRows(sql`
        SELECT fingerprint, state, response_status, response_headers, response_body, response_ref,
               expires_at <= now() AND (state = 'completed' OR locked_at <= now() - ${lock}) AS forgotten,
               state = 'in_progress' AND locked_at <= now() - ${lock} AS crashed
        FROM idempotency_keys WHERE scope = ${request.scope} AND key = ${request.key}`)

    const claim = Effect.fn("IdempotencyStore.claim")(function* (request: IdempotencyRequest) {
      for (let round = 0; round < maxClaimRounds; round++) {
        const token = randomUUID()
        const [claimed] = yield* tryClaim(request, token)
        if (claimed !== undefined) {
          const owned: KeyClaim = { _tag: "KeyClaim", request, token, ttlSeconds }
          return { _tag: "Claimed", claim: owned } satisfies ClaimResult
        }
        // Someone else holds the key. Read what they hold (a new statement sees their committed row); when it has
        // vanished (released, purged) or just became reclaimable, claim again.
        // (The same conditions as the claim's, read a moment later: a key that expired in between is free to claim,
        // for any request. Answering with its old response would replay another request's answer.)
        const [row] = yield* held(request)
        if (row === undefined || row.forgotten) continue
        const same = row.fingerprint === request.fingerprint
        if (row.crashed && same) continue
        if (!same) return { _tag: "Mismatch" } as const
        if (row.state === "in_progress") return { _tag: "InProgress" } as const
        if (row.response_ref !== null)
          return { _tag: "CompletedByHandler", ref: row.response_ref } satisfies ClaimResult
        if (row.response_status === null || row.response_body === null) continue
        const response: StoredResponse = {
          status: row.response_status,
          headers: row.response_headers ?? {},
          // Unreadable = sealed under a key ENCRYPTION_KEYS no longer lists: the operator's to fix (a defect, 500).
          body: yield* box
            .open(row.response_body, responseContext(request))
            .pipe(Effect.catchTag("SecretUnreadable", Effect.die))
        }
        return { _tag: "Completed", response } satisfies ClaimResult
      }
      return yield* Effect.die(new Error(`idempotency key claim did not settle after ${maxClaimRounds} rounds`))
    }, sqlFailuresAsDefects)

    return IdempotencyStore.of({
      ttl: options.ttl,
      lockTimeout: options.lockTimeout,
      claim,
      complete: Effect.fn("IdempotencyStore.complete")(function* (claim, response) {
        const body = yield* box.seal(response.body, responseContext(claim.request))
        const rows = yield* sql`
          UPDATE idempotency_keys
          SET state = 'completed', response_status = ${response.status},
              response_headers = ${JSON.stringify(response.headers)}::jsonb, response_body = ${body},
              response_ref = NULL, completed_at = now(), expires_at = ${expiresFromNow(sql, claim)}
          WHERE ${ownedBy(sql, claim)}
          RETURNING 1`
        return rows.length === 1
      }, sqlFailuresAsDefects),
      release: Effect.fn("IdempotencyStore.release")(function* (claim) {
        yield* sql`DELETE FROM idempotency_keys WHERE ${ownedBy(sql, claim)}`
      }, sqlFailuresAsDefects),
      purgeExpired: Effect.fn("IdempotencyStore.purgeExpired")(function* (batchSize) {
        const rows = yield* sql`
          DELETE FROM idempotency_keys
          WHERE (scope, key) IN (
            SELECT scope, key FROM idempotency_keys
            WHERE expires_at <= now() AND (state = 'completed' OR locked_at <= now() - ${lock})
            LIMIT ${batchSize}
            FOR UPDATE SKIP LOCKED)
          RETURNING 1`
        return rows.length
      }, sqlFailuresAsDefects)
    })
  })

/** The store, configured by `IDEMPOTENCY_TTL` and `IDEMPOTENCY_LOCK_TIMEOUT`. */
export const IdempotencyStoreLive: Layer.Layer<IdempotencyStore, never, SqlClient.SqlClient | AppConfig | SecretBox> =
  Layer.effect(
    IdempotencyStore,
    Effect.gen(function* () {
      const config = yield* AppConfig
      return yield* makeIdempotencyStore(config.idempotency)
    })
  )

export interface IdempotencyPurgeOptions {
  /** Time between purge runs. */
  readonly every: Duration.Duration
  /** Rows deleted per statement; a run repeats while batches come back full. */
  readonly batchSize: number
}

export const defaultPurgeOptions: IdempotencyPurgeOptions = { every: Duration.minutes(1), batchSize: 1000 }

/**
 * The background fiber deleting expired keys, in batches (short statements, short locks; `SKIP LOCKED` lets several
 * replicas purge at once without waiting on each other). A failing run is logged and the next one tries again.
 */
export const purgeExpiredKeys = (options: IdempotencyPurgeOptions = defaultPurgeOptions) =>
  Effect.gen(function* () {
    const store = yield* IdempotencyStore
    const run = Effect.gen(function* () {
      let total = 0
      for (;;) {
        const deleted = yield* store.purgeExpired(options.batchSize)
        total += deleted
        if (deleted < options.batchSize) return total
      }
    }).pipe(
      Effect.tap((total) =>
        total > 0
          ? Effect.logDebug("purged expired idempotency keys").pipe(Effect.annotateLogs({ total }))
          : Effect.void
      ),
      Effect.catchCause((cause) => Effect.logWarning("purging expired idempotency keys failed", cause))
    )
    // The first run waits one period too: replicas starting together do not all purge at once.
    return yield* Effect.repeat(Effect.sleep(options.every).pipe(Effect.andThen(run)), Schedule.forever)
  })

/** Runs `purgeExpiredKeys` for the lifetime of the layer. */
export const IdempotencyPurgeLive = (
  options: IdempotencyPurgeOptions = defaultPurgeOptions
): Layer.Layer<never, never, IdempotencyStore> => Layer.effectDiscard(Effect.forkScoped(purgeExpiredKeys(options)))
