import { randomFillSync } from "node:crypto"
import { Clock, Effect, Schema } from "effect"

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

/**
 * A ULID: 48 bits of milliseconds then 80 random bits, in Crockford base32 (26 chars). Ids sort by creation time,
 * which keeps B-tree inserts local and makes cursor pagination by id follow creation order.
 */
export const ulid = (timeMs: number): string => {
  const time = ulidTime(timeMs)
  const random = randomFillSync(new Uint8Array(16))
  let rest = ""
  for (let i = 0; i < 16; i++) rest += crockford.charAt((random[i] ?? 0) % 32)
  return time + rest
}

/** The 10 characters of a ULID that carry its milliseconds. */
const ulidTime = (timeMs: number): string => {
  let time = ""
  let t = Math.max(0, Math.trunc(timeMs))
  for (let i = 0; i < 10; i++) {
    time = crockford.charAt(t % 32) + time
    t = Math.floor(t / 32)
  }
  return time
}

/**
 * The smallest id with `prefix` created at `timeMs`: ids below it were created earlier (by the clock of whoever made
 * them). A time range over ids, served by an index on the ids.
 */
export const firstIdAt = (prefix: string, timeMs: number): string => `${prefix}_${ulidTime(timeMs)}0000000000000000`

const idPattern = (prefix: string) => new RegExp(`^${prefix}_[0-9A-HJKMNP-TV-Z]{26}$`)

export const TenantId = Schema.String.check(Schema.isPattern(idPattern("ten"))).pipe(Schema.brand("TenantId"))
export type TenantId = typeof TenantId.Type

export const ApiKeyId = Schema.String.check(Schema.isPattern(idPattern("key"))).pipe(Schema.brand("ApiKeyId"))
export type ApiKeyId = typeof ApiKeyId.Type

export const EndpointId = Schema.String.check(Schema.isPattern(idPattern("ep"))).pipe(Schema.brand("EndpointId"))
export type EndpointId = typeof EndpointId.Type

export const EventId = Schema.String.check(Schema.isPattern(idPattern("evt"))).pipe(Schema.brand("EventId"))
export type EventId = typeof EventId.Type

export const EventTypeId = Schema.String.check(Schema.isPattern(idPattern("ety"))).pipe(Schema.brand("EventTypeId"))
export type EventTypeId = typeof EventTypeId.Type

export const DeliveryId = Schema.String.check(Schema.isPattern(idPattern("dlv"))).pipe(Schema.brand("DeliveryId"))
export type DeliveryId = typeof DeliveryId.Type

export const PortalSessionId = Schema.String.check(Schema.isPattern(idPattern("pss"))).pipe(
  Schema.brand("PortalSessionId")
)
export type PortalSessionId = typeof PortalSessionId.Type

/** A new id with the given prefix, timed by the Effect clock (so TestClock controls it). */
export const newId = <P extends string>(prefix: P): Effect.Effect<`${P}_${string}`> =>
  Effect.map(Clock.currentTimeMillis, (now) => `${prefix}_${ulid(now)}` as const)
