import { Cache, Duration, Effect, Exit, Layer, Option } from "effect"
import { SqlClient } from "effect/sql"
import { ApiKeyAuth, type ApiKeyOwner } from "../services/ApiKeyAuth.ts"
import { hashApiKey } from "../src/domain/ApiKey.ts"
import type { TenantId } from "../src/domain/Ids.ts"

/**
 * How long a lookup result is reused. It bounds revocation: a revoked key keeps working for at most this long on
 * each replica. Unknown keys are cached too, so guessing costs no database load.
 */
export const apiKeyCacheTtl = Duration.seconds(5)

const keyFormat = /^ck_[A-Za-z0-9_-]{43}$/

export const ApiKeyAuthLive: Layer.Layer<ApiKeyAuth, never, SqlClient.SqlClient> = Layer.effect(
  ApiKeyAuth,
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // The tenant's quota rides along with the key, so rate limiting costs no query of its own.
    const lookup = (hashHex: string) =>
      sql<{
        tenant_id: TenantId
        rate_limit_max: number | null
        rate_limit_window_seconds: number | null
      }>`
        SELECT k.tenant_id, t.rate_limit_max, t.rate_limit_window_seconds
        FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
        WHERE k.key_hash = decode(${hashHex}, 'hex') AND k.revoked_at IS NULL`.pipe(
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
        Effect.withSpan("ApiKeyAuth.lookup")
      )
    // Failed lookups (database down) are not kept: the next request asks again.
    const cache = yield* Cache.makeWith(lookup, {
      capacity: 10_000,
      timeToLive: (exit) => (Exit.isSuccess(exit) ? apiKeyCacheTtl : Duration.zero)
    })
    return ApiKeyAuth.of({
      authenticate: (key) =>
        keyFormat.test(key)
          ? Cache.get(cache, Buffer.from(hashApiKey(key)).toString("hex"))
          : Effect.succeed(Option.none())
    })
  })
)
