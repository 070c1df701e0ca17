import { assert, describe, it } from "@effect/vitest"
import { makeDeliverySlots, type SlotRow } from "../src/domain/DeliverySlots.ts"

/** The worker's bulkheads and claim-ahead as counts (src/domain/DeliverySlots.ts), without a database. */

const row = (id: string, tenant: string, endpoint: string): SlotRow => ({
  id,
  tenant_id: tenant,
  endpoint_id: endpoint
})
const ids = (rows: ReadonlyArray<SlotRow>) => rows.map((r) => r.id)

describe("DeliverySlots", () => {
  it("starts ready rows in claim order up to the process's concurrency; an ended request makes room for the next", () => {
    const slots = makeDeliverySlots({ concurrency: 2, tenantConcurrency: 2, endpointConcurrency: 4 })
    slots.claimed([row("a", "t1", "e1"), row("b", "t2", "e2"), row("c", "t1", "e3")], 0)
    assert.deepStrictEqual(ids(slots.takeStartable()), ["a", "b"])
    assert.deepStrictEqual(ids(slots.takeStartable()), [], "the process is at its concurrency")
    assert.strictEqual(slots.readyCount(), 1)
    slots.requestEnded(row("a", "t1", "e1"))
    assert.strictEqual(slots.sending(), 1, "the request is over: its slot is free while its attempt is recorded")
    assert.deepStrictEqual(ids(slots.takeStartable()), ["c"])
    assert.strictEqual(slots.sending(), 2)
  })

  it("with the process at its concurrency, every ready row counts as about to start, whatever its tenant", () => {
    const slots = makeDeliverySlots({ concurrency: 2, tenantConcurrency: 2, endpointConcurrency: 4 })
    slots.claimed([row("a", "t1", "e1"), row("b", "t1", "e2"), row("c", "t1", "e3"), row("d", "t2", "e4")], 0)
    slots.takeStartable()
    assert.strictEqual(slots.startableCount(), 2)
    slots.requestEnded(row("a", "t1", "e1"))
    assert.strictEqual(slots.startableCount(), 2, "room in the process and in t1")
  })

  it("a tenant sends at most its cap; its ready rows wait, and others go past them", () => {
    const slots = makeDeliverySlots({ concurrency: 8, tenantConcurrency: 1, endpointConcurrency: 4 })
    slots.claimed([row("a1", "noisy", "e1"), row("a2", "noisy", "e2"), row("q1", "quiet", "e3")], 0)
    assert.deepStrictEqual(ids(slots.takeStartable()), ["a1", "q1"])
    assert.strictEqual(slots.startableCount(), 0, "a2's tenant is at its cap, while the process has room")
    assert.strictEqual(slots.readyCount(), 1)
    slots.requestEnded(row("a1", "noisy", "e1"))
    assert.strictEqual(slots.startableCount(), 1)
    assert.deepStrictEqual(ids(slots.takeStartable()), ["a2"])
  })

  it("the claim sees what is ready or in flight: per endpoint against its cap, per tenant against three times its cap", () => {
    const slots = makeDeliverySlots({ concurrency: 8, tenantConcurrency: 2, endpointConcurrency: 3 })
    slots.claimed(
      [row("a", "t1", "e1"), row("b", "t1", "e1"), row("c", "t1", "e2"), row("d", "t1", "e2"), row("e", "t1", "e3")],
      0
    )
    slots.takeStartable()
    assert.isFalse(slots.tenantFull(row("x", "t1", "e4")), "5 held, 6 allowed")
    slots.claimed([row("f", "t1", "e3")], 0)
    const load = slots.claimLoad()
    assert.deepStrictEqual(Object.fromEntries(load.busyEndpoints), { e1: 2, e2: 2, e3: 2 })
    assert.deepStrictEqual(Object.fromEntries(load.busyTenants), { t1: 6 })
    assert.strictEqual(load.tenantConcurrency, 6)
    assert.strictEqual(load.endpointConcurrency, 3)
    assert.isTrue(slots.tenantFull(row("x", "t1", "e4")))
    assert.isFalse(slots.mayClaimFor({ tenantId: "t1", endpointIds: ["e4"] }), "the tenant holds its share")
    slots.requestEnded(row("a", "t1", "e1"))
    assert.deepStrictEqual(Object.fromEntries(slots.claimLoad().busyEndpoints), { e1: 1, e2: 2, e3: 2 })
    assert.isTrue(slots.mayClaimFor({ tenantId: "t1", endpointIds: ["e1"] }))
  })

  it("an endpoint at its cap, counting its ready rows, is no reason to claim", () => {
    const slots = makeDeliverySlots({ concurrency: 8, tenantConcurrency: 8, endpointConcurrency: 2 })
    slots.claimed([row("a", "t1", "hot"), row("b", "t1", "hot")], 0)
    assert.isFalse(slots.mayClaimFor({ tenantId: "t1", endpointIds: ["hot"] }))
    assert.isTrue(slots.mayClaimFor({ tenantId: "t1", endpointIds: ["hot", "cold"] }))
  })

  it("ready rows claimed before a time are taken out, their counts with them; newer ones and those sending stay", () => {
    const slots = makeDeliverySlots({ concurrency: 8, tenantConcurrency: 1, endpointConcurrency: 4 })
    slots.claimed([row("a1", "t1", "e1"), row("a2", "t1", "e1"), row("a3", "t1", "e2")], 1_000)
    slots.claimed([row("a4", "t1", "e2")], 5_000)
    assert.deepStrictEqual(ids(slots.takeStartable()), ["a1"])
    assert.deepStrictEqual(ids(slots.takeStale(2_000)), ["a2", "a3"])
    assert.strictEqual(slots.readyCount(), 1)
    assert.deepStrictEqual(Object.fromEntries(slots.claimLoad().busyEndpoints), { e1: 1, e2: 1 })
    assert.deepStrictEqual(Object.fromEntries(slots.claimLoad().busyTenants), { t1: 2 })
    assert.deepStrictEqual(ids(slots.takeStale(2_000)), [], "nothing twice")
  })
})
