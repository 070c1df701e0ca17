import { Duration, Effect, Layer, Schema } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import { SecretBox, SecretContext, type SecretUnreadable } from "../services/SecretBox.ts"
import { decodeRows } from "./SqlRows.ts"

/** What a sweep did: values (re-)sealed under the current key, and values it could not open (left as they are). */
export interface ReencryptionReport {
  readonly endpointSecretsSealed: number
  readonly endpointSecretsUnreadable: number
  readonly responsesSealed: number
  readonly responsesUnreadable: number
  /** Key ids of the values that could not be opened because their key is not configured. */
  readonly unknownKeyIds: ReadonlyArray<string>
  /** Not run: the sealing key is the public development key. */
  readonly skipped: boolean
}

const nothingDone = {
  endpointSecretsSealed: 0,
  endpointSecretsUnreadable: 0,
  responsesSealed: 0,
  responsesUnreadable: 0,
  unknownKeyIds: []
} as const

export interface ReencryptionOptions {
  /** Rows per transaction. */
  readonly batchSize: number
}

export const defaultReencryptionOptions: ReencryptionOptions = { batchSize: 200 }

const EndpointSecretRow = Schema.Struct({
  id: Schema.String,
  /** NULL once the endpoint is deleted (with no previous secret either: such a row is never selected). */
  secret: Schema.NullOr(Schema.String),
  previous_secret: Schema.NullOr(Schema.String),
  /** Custom headers (issue 20), sealed under a context of their own; counted with the endpoint's secrets. */
  headers: Schema.NullOr(Schema.String)
})
const endpointSecretRows = decodeRows(EndpointSecretRow)

const ResponseRow = Schema.Struct({
  scope: Schema.String,
  key: Schema.String,
  fingerprint: Schema.String,
  response_body: Schema.String
})
const responseRows = decodeRows(ResponseRow)

/**
 * The re-encryption sweep: seals every plaintext secret and stored response body (rows written before secrets were
 * encrypted, or by a replica of the previous version during a rolling upgrade) and re-seals every value sealed under
 * a key other than the first of `ENCRYPTION_KEYS` (key rotation). Batches walk the primary key; each batch is one
 * transaction holding its rows with `FOR UPDATE SKIP LOCKED`, so replicas starting at once share the work instead of
 * waiting on each other, and a concurrent rotation or claim waits for one short batch at most. Only SQL and local
 * crypto happen while a batch holds its connection. A value that cannot be opened (its key is not configured, or it
 * was tampered with) is left as it is and counted. Idempotent: a second run finds nothing to do. Skipped when the
 * sealing key is the public development key.
 */
export const reencryptSecrets = (
  options: ReencryptionOptions = defaultReencryptionOptions
): Effect.Effect<ReencryptionReport, SqlError.SqlError, SqlClient.SqlClient | SecretBox> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const box = yield* SecretBox
    if (box.sealsWithDevelopmentKey) {
      // Sealing under a public key protects nothing, and `npm run migrate` from a checkout (development, no
      // ENCRYPTION_KEYS) against a real database must not re-seal its rows under a key its servers do not have.
      yield* Effect.logInfo("secrets at rest: re-encryption sweep skipped: the sealing key is the development key")
      return { ...nothingDone, skipped: true }
    }
    const prefix = box.currentPrefix
    const unknownKeyIds = new Set<string>()
    /** The value sealed under the current key, or undefined when it cannot be opened. */
    const reseal = (stored: string, context: SecretContext) =>
      box.open(stored, context).pipe(
        Effect.flatMap((plaintext) => box.seal(plaintext, context)),
        Effect.catchTag("SecretUnreadable", (error: SecretUnreadable) =>
          Effect.sync(() => {
            if (error.reason === "UnknownKey" && error.keyId !== null) unknownKeyIds.add(error.keyId)
            return undefined
          })
        )
      )
    const stale = (column: string) => sql`(${sql(column)} IS NOT NULL AND NOT starts_with(${sql(column)}, ${prefix}))`

    let endpointSecretsSealed = 0
    let endpointSecretsUnreadable = 0
    let afterId = ""
    for (;;) {
      const batch = yield* Effect.gen(function* () {
        const rows = yield* endpointSecretRows(sql`
          SELECT id, secret, previous_secret, headers FROM endpoints
          WHERE id > ${afterId} AND (${stale("secret")} OR ${stale("previous_secret")} OR ${stale("headers")})
          ORDER BY id LIMIT ${options.batchSize}
          FOR UPDATE SKIP LOCKED`)
        const updates: Array<{
          id: string
          secret: string | null
          previous_secret: string | null
          headers: string | null
        }> = []
        for (const row of rows) {
          const context = SecretContext.endpointSecret(row.id)
          let changed = 0
          let secret = row.secret
          if (secret !== null && !secret.startsWith(prefix)) {
            const sealed = yield* reseal(secret, context)
            if (sealed === undefined) endpointSecretsUnreadable++
            else {
              secret = sealed
              changed++
            }
          }
          let previous = row.previous_secret
          if (previous !== null && !previous.startsWith(prefix)) {
            const sealed = yield* reseal(previous, context)
            if (sealed === undefined) endpointSecretsUnreadable++
            else {
              previous = sealed
              changed++
            }
          }
          let headers = row.headers
          if (headers !== null && !headers.startsWith(prefix)) {
            const sealed = yield* reseal(headers, SecretContext.endpointHeaders(row.id))
            if (sealed === undefined) endpointSecretsUnreadable++
            else {
              headers = sealed
              changed++
            }
          }
          if (changed > 0) updates.push({ id: row.id, secret, previous_secret: previous, headers })
          endpointSecretsSealed += changed
        }
        if (updates.length > 0) {
          yield* sql`
            UPDATE endpoints e SET secret = u.secret, previous_secret = u.previous_secret, headers = u.headers
            FROM jsonb_to_recordset(${JSON.stringify(updates)}::jsonb)
                 AS u(id text, secret text, previous_secret text, headers text)
            WHERE e.id = u.id`
        }
        return { last: rows.at(-1)?.id, full: rows.length === options.batchSize }
      }).pipe(sql.withTransaction)
      if (batch.last === undefined) break
      afterId = batch.last
      if (!batch.full) break
    }

    let responsesSealed = 0
    let responsesUnreadable = 0
    let after = { scope: "", key: "" }
    for (;;) {
      const batch = yield* Effect.gen(function* () {
        const rows = yield* responseRows(sql`
          SELECT scope, key, fingerprint, response_body FROM idempotency_keys
          WHERE (scope, key) > (${after.scope}, ${after.key}) AND ${stale("response_body")}
          ORDER BY scope, key LIMIT ${options.batchSize}
          FOR UPDATE SKIP LOCKED`)
        const updates: Array<{ scope: string; key: string; body: string }> = []
        for (const row of rows) {
          const context = SecretContext.idempotencyResponse(row.scope, row.fingerprint, row.key)
          const sealed = yield* reseal(row.response_body, context)
          if (sealed === undefined) responsesUnreadable++
          else updates.push({ scope: row.scope, key: row.key, body: sealed })
        }
        if (updates.length > 0) {
          yield* sql`
            UPDATE idempotency_keys k SET response_body = u.body
            FROM jsonb_to_recordset(${JSON.stringify(updates)}::jsonb) AS u(scope text, key text, body text)
            WHERE k.scope = u.scope AND k.key = u.key`
        }
        const last = rows.at(-1)
        return {
          last: last === undefined ? undefined : { scope: last.scope, key: last.key },
          sealed: updates.length,
          full: rows.length === options.batchSize
        }
      }).pipe(sql.withTransaction)
      responsesSealed += batch.sealed
      if (batch.last === undefined) break
      after = batch.last
      if (!batch.full) break
    }

    return {
      endpointSecretsSealed,
      endpointSecretsUnreadable,
      responsesSealed,
      responsesUnreadable,
      unknownKeyIds: [...unknownKeyIds].sort(),
      skipped: false
    } satisfies ReencryptionReport
  }).pipe(
    Effect.tap((report) => {
      if (report.skipped) return Effect.void
      const counts = {
        endpointSecretsSealed: report.endpointSecretsSealed,
        responsesSealed: report.responsesSealed,
        endpointSecretsUnreadable: report.endpointSecretsUnreadable,
        responsesUnreadable: report.responsesUnreadable
      }
      const unreadable = report.endpointSecretsUnreadable + report.responsesUnreadable
      return Effect.all([
        Effect.logInfo("secrets at rest: re-encryption sweep done").pipe(Effect.annotateLogs(counts)),
        unreadable === 0
          ? Effect.void
          : Effect.logError(
              "secrets at rest: some values cannot be opened with ENCRYPTION_KEYS (left as they are; deliveries to those endpoints fail until the key is configured again or the secret is rotated)"
            ).pipe(Effect.annotateLogs({ ...counts, unknownKeyIds: report.unknownKeyIds.join(",") }))
      ])
    }),
    Effect.withSpan("secrets.reencrypt")
  )

/** Runs the sweep while the process starts (after the migrations); startup fails only if the database does. */
export const SecretReencryptionLive: Layer.Layer<never, SqlError.SqlError, SqlClient.SqlClient | SecretBox> =
  Layer.effectDiscard(reencryptSecrets())

/**
 * The sweep again every `every` (first after one period), for the life of the server: rows a replica of the previous
 * version writes in plaintext during a rolling upgrade are sealed within one period, without waiting for a restart.
 * A failing run is logged and the next one tries again.
 */
export const SecretReencryptionPeriodicLive = (
  every: Duration.Duration = Duration.minutes(10)
): Layer.Layer<never, never, SqlClient.SqlClient | SecretBox> =>
  Layer.effectDiscard(
    Effect.forkScoped(
      Effect.sleep(every).pipe(
        Effect.andThen(
          reencryptSecrets().pipe(
            Effect.catchCause((cause) => Effect.logWarning("secrets at rest: re-encryption sweep failed", cause))
          )
        ),
        Effect.forever
      )
    )
  )
