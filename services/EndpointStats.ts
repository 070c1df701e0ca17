import { Context, type Effect, type Option } from "effect"
import type { EndpointStats as Stats, StatsWindow } from "../src/domain/EndpointStats.ts"
import type { EndpointId, TenantId } from "../src/domain/Ids.ts"

/**
 * How an endpoint's deliveries have gone: its attempts in a window, by outcome, with their success rate and duration
 * percentiles, its latest success and failure ever, and its circuit as it stands. Scoped by the tenant: another
 * tenant's endpoint, and a deleted one, are absent (None), as in every endpoint read. Reads only: it may wait on the
 * circuits' store (Redis), so it must not run inside a transaction.
 */
export interface EndpointStatsShape {
  readonly read: (tenantId: TenantId, id: EndpointId, window: StatsWindow) => Effect.Effect<Option.Option<Stats>>
}

export class EndpointStats extends Context.Service<EndpointStats, EndpointStatsShape>()("codex/EndpointStats") {}
