import { Cache, Duration, Effect, Exit, Layer, Option, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { ApiKeyAuth, type ApiKeyOwner } from "../services/ApiKeyAuth.ts"
import { hashApiKey } from "../src/domain/ApiKey.ts"
import { TenantId } from "../src/domain/Ids.ts"
import { sqlFailuresAsDefects } from "./SqlFailures.ts"
import { decodeRows } from "./SqlRows.ts"

/**
 * How long a lookup result is reused. It bounds revocation: a revoked key keeps working for at most this long on
 * each replica. Unknown keys are cached too, so guessing costs no database load.
 */
export const apiKeyCacheTtl = Duration.seconds(5)

const keyFormat = /^ck_[A-Za-z0-9_-]{43}$/

/** How many keys seen valid this process remembers (their hashes), for lookups while a client is over its quota. */
const knownKeysCapacity = 10_000

/** A live key's tenant and the tenant's rate-limit override (two nullable columns). */
const OwnerRow = Schema.Struct({
  tenant_id: TenantId,
  rate_limit_max: Schema.NullOr(Schema.Int),
  rate_limit_window_seconds: Schema.NullOr(Schema.Int)
})
const ownerRows = decodeRows(OwnerRow)

export const ApiKeyAuthLive: Layer.Layer<ApiKeyAuth, never, SqlClient.SqlClient> = Layer.effect(
  ApiKeyAuth,
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // The tenant's quota rides along with the key, so rate limiting costs no query of its own.
    const lookup = (hashHex: string) =>
      ownerRows(sql`
        SELECT k.tenant_id, t.rate_limit_max, t.rate_limit_window_seconds
        FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
        WHERE k.key_hash = decode(${hashHex}, 'hex') AND k.revoked_at IS NULL`).pipe(
        Effect.map((rows) =>
          Option.map(
            Option.fromNullishOr(rows[0]),
            (row): ApiKeyOwner => ({
              tenantId: row.tenant_id,
              rateLimit:
                row.rate_limit_max === null || row.rate_limit_window_seconds === null
                  ? undefined
                  : { limit: row.rate_limit_max, window: Duration.seconds(row.rate_limit_window_seconds) }
            })
          )
        ),
        sqlFailuresAsDefects,
        Effect.withSpan("ApiKeyAuth.lookup")
      )
    // Hashes of keys that resolved to a tenant, oldest first: a key seen valid stays worth a lookup after its cache
    // entry expired, even while its client's address is over quota (a revoked one then costs a lookup every 5 s).
    const known = new Set<string>()
    const remember = (hashHex: string) => {
      known.delete(hashHex)
      known.add(hashHex)
      if (known.size > knownKeysCapacity) known.delete(known.values().next().value as string)
    }
    // Failed lookups (database down) are not kept: the next request asks again.
    const cache = yield* Cache.makeWith(
      (hashHex: string) =>
        Effect.tap(lookup(hashHex), (owner) =>
          Effect.sync(() => {
            if (Option.isSome(owner)) remember(hashHex)
          })
        ),
      { capacity: 10_000, timeToLive: (exit) => (Exit.isSuccess(exit) ? apiKeyCacheTtl : Duration.zero) }
    )
    const hashOf = (key: string) => Buffer.from(hashApiKey(key)).toString("hex")
    const unknown = Effect.succeed(Option.none<ApiKeyOwner>())
    return ApiKeyAuth.of({
      authenticate: (key) => (keyFormat.test(key) ? Cache.get(cache, hashOf(key)) : unknown),
      authenticateIfKnown: (key) => {
        if (!keyFormat.test(key)) return unknown
        const hashHex = hashOf(key)
        if (known.has(hashHex)) return Cache.get(cache, hashHex)
        // Cached (a lookup in flight included), or unknown without asking the database.
        return Effect.map(Cache.getOption(cache, hashHex), Option.flatten)
      }
    })
  })
)
