import { Effect, Layer, Option, Redacted } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import { AppConfig } from "../../services/AppConfig.ts"
import { issueApiKey } from "../domain/ApiKey.ts"
import { newId } from "../domain/Ids.ts"

export interface DemoCredentials {
  readonly tenantId: string
  readonly apiKey: Redacted.Redacted<string>
}

const seedName = "demo"

/**
 * Creates the demo tenant and its first API key, once. Claiming the seed row and creating the data happen in one
 * transaction, so concurrent replicas cannot both seed, and a crash leaves nothing half-done. Returns the new
 * credentials only to the process that created them.
 */
export const seedDemoTenant: Effect.Effect<
  Option.Option<DemoCredentials>,
  SqlError.SqlError,
  SqlClient.SqlClient
> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  // A transaction holds a pooled connection: SQL only inside, never a network wait (DNS, HTTP, Redis).
  return yield* sql.withTransaction(
    Effect.gen(function* () {
      const claimed = yield* sql`
          INSERT INTO codex_seeds (name) VALUES (${seedName}) ON CONFLICT (name) DO NOTHING RETURNING name`
      if (claimed.length === 0) return Option.none()
      const tenantId = yield* newId("ten")
      const keyId = yield* newId("key")
      const key = yield* issueApiKey
      yield* sql`INSERT INTO tenants (id, name) VALUES (${tenantId}, ${"Demo tenant"})`
      yield* sql`
          INSERT INTO api_keys (id, tenant_id, key_hash, key_prefix)
          VALUES (${keyId}, ${tenantId}, ${key.hash}, ${key.prefix})`
      yield* sql`UPDATE codex_seeds SET tenant_id = ${tenantId} WHERE name = ${seedName}`
      return Option.some({ tenantId, apiKey: key.secret })
    })
  )
}).pipe(Effect.withSpan("seed.demoTenant"))

const banner = (credentials: DemoCredentials): string =>
  [
    "",
    "  codex-api demo tenant created (development only). This key is shown once and never again:",
    `    tenant:  ${credentials.tenantId}`,
    `    API key: ${Redacted.value(credentials.apiKey)}`,
    "  Send it as 'Authorization: Bearer <key>'. A new demo key: see README, 'Demo tenant'.",
    "",
    ""
  ].join("\n")

/**
 * In development, seeds the demo tenant at startup and prints its key once, straight to the terminal (never
 * through the logger: keys must not reach log storage). Elsewhere it does nothing.
 */
export const DemoSeedLive: Layer.Layer<never, SqlError.SqlError, AppConfig | SqlClient.SqlClient> = Layer.effectDiscard(
  Effect.gen(function* () {
    const config = yield* AppConfig
    if (config.appEnv !== "development") return
    const created = yield* seedDemoTenant
    if (Option.isSome(created)) {
      yield* Effect.sync(() => process.stdout.write(banner(created.value)))
    } else {
      yield* Effect.logDebug("demo tenant already seeded")
    }
  })
)
