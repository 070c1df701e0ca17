import { PgClient } from "@effect/sql-pg"
import { Cache, Clock, Deferred, Duration, Effect, Exit, Layer, Option, Queue, Schedule, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { ApiKeyAuth, type TenantAccess } from "../services/ApiKeyAuth.ts"
import { AppConfig } from "../services/AppConfig.ts"
import { apiKeysChannel, hashApiKey } from "../src/domain/ApiKey.ts"
import { ApiKeyScope } from "../src/domain/ApiKeyInfo.ts"
import { ApiKeyId, TenantId } from "../src/domain/Ids.ts"
import { isPortalToken, portalTokenFormat } from "../src/domain/PortalSession.ts"
import { makeApiKeyInvalidations } from "./ApiKeyInvalidations.ts"
import { makeApiKeyUse } from "./ApiKeyUse.ts"
import { type CredentialFound, lookupPortalSession } from "./PortalSessionLookup.ts"
import { sqlFailuresAsDefects } from "./SqlFailures.ts"
import { decodeRows } from "./SqlRows.ts"
import { catalogInUseColumn, quotaOf } from "./TenantAccessSql.ts"

/**
 * How long a lookup result is reused. A revocation reaches this cache at once (see `invalidateTenant` and the
 * LISTEN below); this lifetime bounds it only while the notification cannot arrive (LISTEN down), and bounds how long
 * a changed tenant quota takes to apply. Unknown keys are cached too, so guessing costs no database load.
 */
export const apiKeyCacheTtl = Duration.seconds(5)

const keyFormat = /^ck_[A-Za-z0-9_-]{43}$/

/** How many keys seen valid this process remembers (their hashes), for lookups while a client is over its quota. */
const knownKeysCapacity = 10_000

/** A live key, its tenant and the tenant's rate-limit override (two nullable columns). */
const OwnerRow = Schema.Struct({
  id: ApiKeyId,
  tenant_id: TenantId,
  scope: ApiKeyScope,
  expires_at: Schema.NullOr(Schema.Date),
  rate_limit_max: Schema.NullOr(Schema.Int),
  rate_limit_window_seconds: Schema.NullOr(Schema.Int),
  catalog_in_use: Schema.Boolean
})
const ownerRows = decodeRows(OwnerRow)

/** A live tenant (an operator acts as it): its rate-limit override and whether it uses the catalog. */
const TenantRow = Schema.Struct({
  rate_limit_max: Schema.NullOr(Schema.Int),
  rate_limit_window_seconds: Schema.NullOr(Schema.Int),
  catalog_in_use: Schema.Boolean
})
const tenantRows = decodeRows(TenantRow)

/** A cached lookup: the owner, when the credential expires (ms; null = never), and the epoch the lookup started at. */
interface Found extends CredentialFound {
  readonly epoch: number
}

/** The first character of a cache entry: which table its hash is looked up in. */
const keyEntry = "k"
const portalEntry = "p"

const sha256Hex = (credential: string) => Buffer.from(hashApiKey(credential)).toString("hex")

export const ApiKeyAuthLive: Layer.Layer<ApiKeyAuth, never, SqlClient.SqlClient | PgClient.PgClient | AppConfig> =
  Layer.effect(
    ApiKeyAuth,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const pg = yield* PgClient.PgClient
      const config = yield* AppConfig
      const invalidations = makeApiKeyInvalidations()
      const use = yield* makeApiKeyUse(sql)
      // The tenant's quota rides along with the key, so rate limiting costs no query of its own. An expired key is
      // found too: its expiry is checked on every request against the clock (below), never left to the cache.
      const lookupKey = (hashHex: string) =>
        ownerRows(sql`
          SELECT k.id, k.tenant_id, k.scope, k.expires_at, t.rate_limit_max, t.rate_limit_window_seconds,
                 ${sql.literal(catalogInUseColumn)} AS catalog_in_use
          FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
          WHERE k.key_hash = decode(${hashHex}, 'hex') AND k.revoked_at IS NULL AND t.deleted_at IS NULL`).pipe(
          Effect.map((rows) =>
            Option.map(
              Option.fromNullishOr(rows[0]),
              (row): CredentialFound => ({
                owner: {
                  tenantId: row.tenant_id,
                  credential: { _tag: "ApiKey", keyId: row.id },
                  scope: row.scope,
                  rateLimit: quotaOf(row),
                  catalogInUse: row.catalog_in_use
                },
                expiresAt: row.expires_at === null ? null : row.expires_at.getTime()
              })
            )
          )
        )
      // Cache entries are keyed by kind and hash (`cacheKey`): a portal session's token is looked up in its own table.
      const lookup = (entry: string) =>
        Effect.suspend(() => {
          const epoch = invalidations.epoch()
          const hashHex = entry.slice(1)
          const found = entry.startsWith(portalEntry) ? lookupPortalSession(sql, hashHex) : lookupKey(hashHex)
          return Effect.map(
            found,
            Option.map((credential): Found => ({ ...credential, epoch }))
          )
        }).pipe(sqlFailuresAsDefects, Effect.withSpan("ApiKeyAuth.lookup"))
      // Entries (kind and hash) of credentials that resolved to a tenant, oldest first: a key seen valid stays worth a lookup after its cache
      // entry expired, even while its client's address is over quota (a revoked one then costs a lookup every 5 s).
      const known = new Set<string>()
      const remember = (entry: string) => {
        known.delete(entry)
        known.add(entry)
        if (known.size > knownKeysCapacity) known.delete(known.values().next().value as string)
      }
      // Failed lookups (database down) are not kept: the next request asks again.
      const cache = yield* Cache.makeWith(
        (entry: string) =>
          Effect.tap(lookup(entry), (found) =>
            Effect.sync(() => {
              if (Option.isSome(found)) remember(entry)
            })
          ),
        { capacity: 10_000, timeToLive: (exit) => (Exit.isSuccess(exit) ? apiKeyCacheTtl : Duration.zero) }
      )
      /** A cached answer, unless the tenant's keys changed since its lookup started: then the database is asked. */
      const current = (entry: string, cached: Option.Option<Found>) =>
        Option.isSome(cached) && invalidations.isStale(cached.value.owner.tenantId, cached.value.epoch)
          ? Effect.andThen(Cache.invalidate(cache, entry), Cache.get(cache, entry))
          : Effect.succeed(cached)
      /** The owner of a key found live and not expired now; its use is recorded (off the request). */
      const accepted = (found: Option.Option<Found>) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          if (Option.isNone(found)) return Effect.succeedNone
          const { owner, expiresAt } = found.value
          if (expiresAt !== null && now >= expiresAt) return Effect.succeedNone
          return owner.credential._tag === "ApiKey"
            ? Effect.as(use.used(owner.credential.keyId), Option.some(owner))
            : Effect.succeed(Option.some(owner))
        })
      const unknown = Effect.succeedNone
      const invalidateTenant = (tenantId: TenantId) => Effect.sync(() => invalidations.tenant(tenantId))

      // The tenants operators act as, cached like keys (and forgotten with them: `invalidations` is per tenant).
      const tenantLookup = (tenantId: TenantId) =>
        Effect.suspend(() => {
          const epoch = invalidations.epoch()
          return tenantRows(sql`
            SELECT t.rate_limit_max, t.rate_limit_window_seconds, ${sql.literal(catalogInUseColumn)} AS catalog_in_use
            FROM tenants t WHERE t.id = ${tenantId} AND t.deleted_at IS NULL`).pipe(
            Effect.map((rows) =>
              Option.map(
                Option.fromNullishOr(rows[0]),
                (row): { readonly access: TenantAccess; readonly epoch: number } => ({
                  access: { tenantId, rateLimit: quotaOf(row), catalogInUse: row.catalog_in_use },
                  epoch
                })
              )
            )
          )
        }).pipe(sqlFailuresAsDefects, Effect.withSpan("ApiKeyAuth.operatorTenant"))
      const tenants = yield* Cache.makeWith(tenantLookup, {
        capacity: 10_000,
        timeToLive: (exit) => (Exit.isSuccess(exit) ? apiKeyCacheTtl : Duration.zero)
      })
      const isTenantId = Schema.is(TenantId)
      const operatorTenant = (tenantId: string): Effect.Effect<Option.Option<TenantAccess>> => {
        if (!isTenantId(tenantId)) return unknown
        return Cache.get(tenants, tenantId).pipe(
          Effect.flatMap((cached) =>
            Option.isSome(cached) && invalidations.isStale(tenantId, cached.value.epoch)
              ? Effect.andThen(Cache.invalidate(tenants, tenantId), Cache.get(tenants, tenantId))
              : Effect.succeed(cached)
          ),
          Effect.map(Option.map((found) => found.access))
        )
      }

      // Other replicas' revocations arrive as NOTIFY naming the tenant. LISTEN holds a pooled connection for good:
      // only on a pool that keeps one free beside the delivery worker's. The embedded database (a pool of one, one
      // process) needs none: its own invalidation is the only one there is.
      const listening = Option.isSome(config.databaseUrl) && config.databasePoolMax >= 3
      const listenerReady = yield* Deferred.make<void>()
      const listener = Effect.gen(function* () {
        const notifications = yield* pg.listen(apiKeysChannel)
        // What changed while nobody listened is unknown: every cached answer is looked up again.
        invalidations.all()
        yield* Deferred.succeed(listenerReady, undefined)
        return yield* Effect.forever(
          Effect.flatMap(Queue.take(notifications), ({ payload }) =>
            Schema.is(TenantId)(payload) ? invalidateTenant(payload) : Effect.sync(() => invalidations.all())
          )
        )
      }).pipe(
        Effect.scoped,
        Effect.tapCause((cause) =>
          Effect.logWarning("api keys: LISTEN failed; revocations on other replicas apply within 5 s", cause)
        ),
        Effect.retry(Schedule.spaced(apiKeyCacheTtl)),
        Effect.ignore
      )
      if (listening) {
        yield* Effect.forkScoped(listener)
        const ready = yield* Deferred.await(listenerReady).pipe(Effect.timeoutOption(Duration.seconds(5)))
        if (Option.isNone(ready)) yield* Effect.logWarning("api keys: LISTEN not confirmed after 5 s")
      }

      /** The cache entry of a well-formed credential: its kind and SHA-256; undefined for anything malformed. */
      const cacheKey = (credential: string): string | undefined => {
        if (isPortalToken(credential)) {
          return portalTokenFormat.test(credential) ? portalEntry + sha256Hex(credential) : undefined
        }
        return keyFormat.test(credential) ? keyEntry + sha256Hex(credential) : undefined
      }
      return ApiKeyAuth.of({
        authenticate: (key) => {
          const entry = cacheKey(key)
          if (entry === undefined) return unknown
          return Cache.get(cache, entry).pipe(
            Effect.flatMap((found) => current(entry, found)),
            Effect.flatMap(accepted)
          )
        },
        authenticateIfKnown: (key) => {
          const entry = cacheKey(key)
          if (entry === undefined) return unknown
          // Cached (a lookup in flight included), or unknown without asking the database.
          const found = known.has(entry)
            ? Cache.get(cache, entry)
            : Effect.map(Cache.getOption(cache, entry), Option.flatten)
          return found.pipe(
            Effect.flatMap((cached) => current(entry, cached)),
            Effect.flatMap(accepted)
          )
        },
        invalidateTenant,
        operatorTenant,
        changes: { epoch: invalidations.epoch, isStale: invalidations.isStale }
      })
    })
  )
