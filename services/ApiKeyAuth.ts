import { Context, type Effect, type Option } from "effect"
import type { SqlError } from "effect/sql"
import type { TenantId } from "../src/domain/Ids.ts"

/**
 * Resolves an API key to its tenant. Implementations cache results briefly, so a request does not cost a database
 * round trip; the cache lifetime bounds how long a revoked key keeps working.
 */
export interface ApiKeyAuthShape {
  /** None for unknown, malformed or revoked keys; a failed lookup is an error (503), never a silent 401. */
  readonly authenticate: (key: string) => Effect.Effect<Option.Option<TenantId>, SqlError.SqlError>
}

export class ApiKeyAuth extends Context.Service<ApiKeyAuth, ApiKeyAuthShape>()("codex/ApiKeyAuth") {}
