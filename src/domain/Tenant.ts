import { Schema } from "effect"
import { ApiKeyId, TenantId } from "./Ids.ts"
import { isStorable } from "./StorableText.ts"

export const TenantName = Schema.String.check(Schema.isTrimmed(), Schema.isBetweenLength(1, 200), isStorable).annotate({
  description: "Display name, 1..200 characters.",
  examples: ["Acme Inc."]
})

/** A tenant's own quota, instead of RATE_LIMIT_MAX per RATE_LIMIT_WINDOW. */
export const TenantRateLimit = Schema.Struct({
  limit: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1_000_000_000 })).annotate({
    description: "Requests allowed per window (the `q` of RateLimit-Policy)."
  }),
  windowSeconds: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 31_536_000 })).annotate({
    description: "The window in seconds (the `w` of RateLimit-Policy)."
  })
}).annotate({
  identifier: "TenantRateLimit",
  description: "The tenant's own rate limit on /v1; null = the server default. Takes effect within 5 seconds.",
  examples: [{ limit: 1000, windowSeconds: 900 }]
})
export type TenantRateLimit = typeof TenantRateLimit.Type

/** How long the tenant's events, deliveries and attempts are kept, in seconds; null = RETENTION. */
export const TenantRetention = Schema.NullOr(
  Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 315_360_000 }))
).annotate({
  description:
    "How long the tenant's events, their deliveries and attempts are kept, in seconds (1 second to 10 years); " +
    "null = the server's RETENTION. Reads stop showing what is past it at once; an event with a pending delivery " +
    "is kept until that delivery ends.",
  examples: [7_776_000, null]
})

/** Strict mode of the event-type catalog (issue 22). */
export const StrictEventTypes = Schema.Boolean.annotate({
  description:
    "Strict mode: publishing a type not in the tenant's catalog (`/v1/event-types`) is refused (422), and an " +
    "endpoint's `eventTypes` must name catalog types or prefixes matching one (422). Default false."
})

export const Tenant = Schema.Struct({
  id: TenantId.annotate({ examples: [TenantId.make("ten_01JD0000000000000000000000")] }),
  name: Schema.String,
  rateLimit: Schema.NullOr(TenantRateLimit),
  retentionSeconds: TenantRetention,
  strictEventTypes: StrictEventTypes,
  status: Schema.Literals(["active", "deleting"]).annotate({
    description:
      "`deleting` once `DELETE /admin/tenants/{id}` was asked: its keys answer 401, nothing is delivered, and its " +
      "rows are being removed in the background; the tenant is gone (404) when they all are."
  }),
  createdAt: Schema.String.annotate({ description: "ISO 8601 timestamp." })
}).annotate({ identifier: "Tenant" })
export type Tenant = typeof Tenant.Type

export const CreateTenant = Schema.Struct({
  name: TenantName,
  rateLimit: Schema.optionalKey(Schema.NullOr(TenantRateLimit)),
  retentionSeconds: Schema.optionalKey(TenantRetention),
  strictEventTypes: Schema.optionalKey(StrictEventTypes)
}).annotate({ identifier: "CreateTenant" })
export type CreateTenant = typeof CreateTenant.Type

/**
 * Absent fields stay as they are; `rateLimit: null` returns the tenant to the default quota, `retentionSeconds: null`
 * to the server's RETENTION.
 */
export const UpdateTenant = Schema.Struct({
  name: Schema.optionalKey(TenantName),
  rateLimit: Schema.optionalKey(Schema.NullOr(TenantRateLimit)),
  retentionSeconds: Schema.optionalKey(TenantRetention),
  strictEventTypes: Schema.optionalKey(StrictEventTypes)
}).annotate({ identifier: "UpdateTenant" })
export type UpdateTenant = typeof UpdateTenant.Type

export const ApiKeySummary = Schema.Struct({
  id: ApiKeyId,
  prefix: Schema.String.annotate({ description: "The first characters of the key, to tell keys apart." }),
  createdAt: Schema.String,
  revokedAt: Schema.NullOr(Schema.String)
}).annotate({ identifier: "ApiKeySummary" })
export type ApiKeySummary = typeof ApiKeySummary.Type

export const IssuedApiKey = Schema.Struct({
  id: ApiKeyId,
  key: Schema.String.annotate({
    description: "The API key. Shown only in this response: store it now, it cannot be read again."
  }),
  prefix: Schema.String,
  createdAt: Schema.String
}).annotate({ identifier: "IssuedApiKey" })
export type IssuedApiKey = typeof IssuedApiKey.Type

/** How far the removal of a deleted tenant's rows has come. */
export const TenantDeletion = Schema.Struct({
  requestedAt: Schema.String.annotate({ description: "When the deletion was asked (ISO 8601)." }),
  eventsRemoved: Schema.Number.annotate({
    description: "Events removed so far, each with its deliveries and their attempts."
  }),
  eventsRemaining: Schema.Number.annotate({
    description: "Events still to remove, counted up to 100,000 (a larger remainder shows as 100,000)."
  })
}).annotate({
  identifier: "TenantDeletion",
  examples: [{ requestedAt: "2026-12-07T10:00:00.000Z", eventsRemoved: 42_000, eventsRemaining: 1_500 }]
})
export type TenantDeletion = typeof TenantDeletion.Type

export const TenantDetail = Schema.Struct({
  ...Tenant.fields,
  apiKeys: Schema.Array(ApiKeySummary),
  deletion: Schema.NullOr(TenantDeletion).annotate({ description: "Null while the tenant is active." })
}).annotate({ identifier: "TenantDetail" })
export type TenantDetail = typeof TenantDetail.Type

export const CreatedTenant = Schema.Struct({ tenant: Tenant, apiKey: IssuedApiKey }).annotate({
  identifier: "CreatedTenant"
})
export type CreatedTenant = typeof CreatedTenant.Type
