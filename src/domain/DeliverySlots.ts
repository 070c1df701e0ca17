import type { QueuedFor } from "./Delivery.ts"

/** What the slots need to know of a claimed delivery. */
export interface SlotRow {
  readonly id: string
  readonly tenant_id: string
  readonly endpoint_id: string
}

export interface SlotLimits {
  /** `DELIVERY_CONCURRENCY`: sends in flight in the process. */
  readonly concurrency: number
  /** `DELIVERY_TENANT_CONCURRENCY`: sends in flight per tenant. */
  readonly tenantConcurrency: number
  /** `DELIVERY_ENDPOINT_CONCURRENCY`: sends in flight per endpoint, ready ones included. */
  readonly endpointConcurrency: number
}

/**
 * A worker's bulkheads and claim-ahead, as counts (no I/O: the worker loop acts on what they say).
 *
 * - At most `concurrency` sends in the process, `tenantConcurrency` per tenant and `endpointConcurrency` per endpoint,
 *   so a slow receiver or a noisy tenant ties up a few slots, never the worker. All three are given back when the
 *   request is over (`requestEnded`): recording the attempt needs no connection to the receiver, and a process slot
 *   held until the record (a group commit, a few milliseconds) left the worker waiting on its own records.
 * - Claim-ahead: claims keep deliveries leased beyond those being sent (`ready`), so a slot that frees starts the next
 *   one at once instead of waiting for a claim (the claim's round trip, in series with every slot, left the worker
 *   idle 44% of a drain). An endpoint's cap counts its ready deliveries too, so they can always start as far as it is
 *   concerned; a tenant may hold three times its cap, sent or ready (so that one claim can take half a concurrency's
 *   worth while its tenant sends: a claim costs about the same for 16 rows as for 48), and its ready deliveries start
 *   only while it sends fewer than its cap. Those that wait too long (its sends hang) are taken out to be given back
 *   (`takeStale`): their leases must not run out while they wait, and another worker may have room for them.
 */
export interface DeliverySlots<Row extends SlotRow> {
  /** Requests in flight. */
  readonly sending: () => number
  /** Deliveries claimed and not yet started. */
  readonly readyCount: () => number
  /**
   * Ready deliveries that will start as slots free: all of them while the process is at its concurrency, otherwise
   * those whose tenant has room (the others wait for their tenant's sends, which may hang).
   */
  readonly startableCount: () => number
  /** What the next claim passes to the database: this process's load per endpoint and tenant, and the caps. */
  readonly claimLoad: () => {
    readonly busyEndpoints: ReadonlyMap<string, number>
    readonly busyTenants: ReadonlyMap<string, number>
    readonly endpointConcurrency: number
    readonly tenantConcurrency: number
  }
  /** Whether the claim filled `row`'s tenant's share (so more may be due than it could take). */
  readonly tenantFull: (row: Row) => boolean
  /** Rows a claim leased, ready to start, in the order the claim handed them out; `at` in epoch milliseconds. */
  readonly claimed: (rows: ReadonlyArray<Row>, at: number) => void
  /** Takes out the ready rows that may start now (process and tenant room), counted as sending from here on. */
  readonly takeStartable: () => ReadonlyArray<Row>
  /** The request of a started row is over: its process's, endpoint's and tenant's slots are given back. Once per row. */
  readonly requestEnded: (row: Row) => void
  /** Takes out the ready rows claimed before `before` (epoch milliseconds), to be given back to the queue. */
  readonly takeStale: (before: number) => ReadonlyArray<Row>
  /**
   * Whether deliveries queued for `queued` may give a claim anything to take here: not while their tenant holds its
   * share, or every one of their endpoints is at its cap.
   */
  readonly mayClaimFor: (queued: QueuedFor) => boolean
}

const increment = (counts: Map<string, number>, key: string) => counts.set(key, (counts.get(key) ?? 0) + 1)
const decrement = (counts: Map<string, number>, key: string) => {
  const left = (counts.get(key) ?? 1) - 1
  if (left <= 0) counts.delete(key)
  else counts.set(key, left)
}

export const makeDeliverySlots = <Row extends SlotRow>(limits: SlotLimits): DeliverySlots<Row> => {
  const tenantHoldCap = limits.tenantConcurrency * 3
  /** Per endpoint: ready, or with its request in flight. */
  const perEndpoint = new Map<string, number>()
  /** Per tenant: with its request in flight; and ready or in flight. */
  const tenantSending = new Map<string, number>()
  const tenantHolding = new Map<string, number>()
  const ready: Array<{ readonly row: Row; readonly at: number }> = []
  let sending = 0

  const tenantHasRoom = (tenantId: string) => (tenantSending.get(tenantId) ?? 0) < limits.tenantConcurrency
  const releaseHold = (row: Row) => {
    decrement(perEndpoint, row.endpoint_id)
    decrement(tenantHolding, row.tenant_id)
  }

  return {
    sending: () => sending,
    readyCount: () => ready.length,
    startableCount: () =>
      sending >= limits.concurrency
        ? ready.length
        : ready.reduce((n, entry) => (tenantHasRoom(entry.row.tenant_id) ? n + 1 : n), 0),
    claimLoad: () => ({
      busyEndpoints: perEndpoint,
      busyTenants: tenantHolding,
      endpointConcurrency: limits.endpointConcurrency,
      tenantConcurrency: tenantHoldCap
    }),
    tenantFull: (row) => (tenantHolding.get(row.tenant_id) ?? 0) >= tenantHoldCap,
    claimed: (rows, at) => {
      for (const row of rows) {
        increment(perEndpoint, row.endpoint_id)
        increment(tenantHolding, row.tenant_id)
        ready.push({ row, at })
      }
    },
    takeStartable: () => {
      const starting: Array<Row> = []
      for (let i = 0; i < ready.length && sending < limits.concurrency; ) {
        const entry = ready[i]
        if (entry !== undefined && tenantHasRoom(entry.row.tenant_id)) {
          ready.splice(i, 1)
          starting.push(entry.row)
          sending++
          increment(tenantSending, entry.row.tenant_id)
        } else i++
      }
      return starting
    },
    requestEnded: (row) => {
      sending--
      decrement(tenantSending, row.tenant_id)
      releaseHold(row)
    },
    takeStale: (before) => {
      const stale: Array<Row> = []
      for (let i = ready.length - 1; i >= 0; i--) {
        const entry = ready[i]
        if (entry !== undefined && entry.at < before) {
          ready.splice(i, 1)
          stale.unshift(entry.row)
          releaseHold(entry.row)
        }
      }
      return stale
    },
    mayClaimFor: (queued) =>
      (tenantHolding.get(queued.tenantId) ?? 0) < tenantHoldCap &&
      queued.endpointIds.some((id) => (perEndpoint.get(id) ?? 0) < limits.endpointConcurrency)
  }
}
