import { Duration, Effect, type Schema } from "effect"
import type { DeliveryConfig } from "../../services/AppConfig.ts"
import { apiClient, createTenant } from "./http.ts"
import { poll } from "./poll.ts"

/** Helpers for delivery tests that read state through the API (not SQL: see the PGlite note in sharedDatabase.ts). */

export type Api = Effect.Success<ReturnType<typeof apiClient>>

/** The (only) delivery of an event. */
export const deliveryOf = (api: Api, eventId: string) =>
  api.deliveries.listForEvent({ params: { id: eventId } }).pipe(
    Effect.map(({ data }) => data[0]),
    Effect.orDie
  )

/** The delivery of `eventId` to `endpointId` (an event with several endpoints); the test fails when there is none. */
export const deliveryTo = (api: Api, eventId: string, endpointId: string) =>
  api.deliveries.listForEvent({ params: { id: eventId } }).pipe(
    Effect.map(({ data }) => data.find((d) => d.endpointId === endpointId)),
    Effect.flatMap((row) =>
      row === undefined ? Effect.die(new Error(`no delivery of ${eventId} to ${endpointId}`)) : Effect.succeed(row)
    ),
    Effect.orDie
  )

/** Waits until the delivery of `eventId` to `endpointId` is no longer pending; returns it. */
export const settledTo = (api: Api, eventId: string, endpointId: string, deadlineMs = 10_000) =>
  poll(
    `the delivery of ${eventId} to ${endpointId} to settle`,
    deliveryTo(api, eventId, endpointId),
    (row) => row.status !== "pending",
    {
      timeoutMs: deadlineMs
    }
  )

/** Waits until the delivery of `eventId` is no longer pending; returns it. */
export const settled = (api: Api, eventId: string, deadlineMs = 10_000) =>
  poll(
    `the delivery of ${eventId} to settle`,
    deliveryOf(api, eventId),
    (row): row is NonNullable<typeof row> => row !== undefined && row.status !== "pending",
    { timeoutMs: deadlineMs }
  )

/** Waits until the delivery of `eventId` has succeeded; returns it. */
export const succeeded = (api: Api, eventId: string, deadlineMs = 10_000) =>
  poll(
    `the delivery of ${eventId} to succeed`,
    deliveryOf(api, eventId),
    (row): row is NonNullable<typeof row> => row?.status === "succeeded",
    { timeoutMs: deadlineMs }
  )

/** A tenant with one endpoint at `url`; returns the API client, the endpoint id and its secret. */
export const tenantWithEndpoint = (url: string) =>
  Effect.gen(function* () {
    const tenant = yield* createTenant("Delivery")
    const api = yield* apiClient(tenant.apiKey)
    const endpoint = yield* api.endpoints.create({ payload: { url } })
    const { secret } = yield* api.endpoints.getSecret({ params: { id: endpoint.id } })
    return { api, apiKey: tenant.apiKey, tenantId: tenant.tenantId, endpointId: endpoint.id, secret }
  }).pipe(Effect.orDie)

export const publish = (api: Api, type = "order.created", data: Record<string, Schema.Json> = { orderId: "o_1" }) =>
  api.events.publish({ payload: { type, data } }).pipe(Effect.orDie)

/**
 * The worker as delivery tests run it: on, with backoff shortened to milliseconds (50 ms base, 200 ms cap) and a
 * 100 ms poll; everything else as in production, but for the per-tenant cap, which is the whole concurrency unless a
 * test sets it (most tests have one tenant, and count on every slot). `overrides` change what a test is about.
 */
export const fastWorker = (overrides: Partial<DeliveryConfig> = {}): DeliveryConfig => ({
  worker: true,
  timeout: Duration.seconds(5),
  maxAttempts: 5,
  backoffBase: Duration.millis(50),
  backoffMax: Duration.millis(200),
  concurrency: 8,
  endpointConcurrency: 4,
  pollInterval: Duration.millis(100),
  leaseMargin: Duration.seconds(30),
  disableAfter: Duration.days(5),
  tenantConcurrency: overrides.concurrency ?? 8,
  ...overrides
})
