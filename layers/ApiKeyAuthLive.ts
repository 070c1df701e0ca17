import { Cache, Duration, Effect, Exit, Layer, Option } from "effect"
import { SqlClient } from "effect/sql"
import { ApiKeyAuth } from "../services/ApiKeyAuth.ts"
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
    const lookup = (hashHex: string) =>
      sql<{ tenant_id: TenantId }>`
        SELECT tenant_id FROM api_keys
        WHERE key_hash = decode(${hashHex}, 'hex') AND revoked_at IS NULL`.pipe(
        Effect.map((rows) => Option.fromNullishOr(rows[0]?.tenant_id)),
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
