import { Schema } from "effect"
import { OccurredAt } from "./Event.ts"
import { ApiKeyId } from "./Ids.ts"
import { isStorable } from "./StorableText.ts"

/** `full` may do anything the tenant may; `read` only GET and HEAD (any other /v1 request is a 403). */
export const ApiKeyScope = Schema.Literals(["full", "read"]).annotate({
  description: "`full`: every /v1 request; `read`: GET and HEAD only (anything else is 403).",
  examples: ["read"]
})
export type ApiKeyScope = typeof ApiKeyScope.Type

export const ApiKeyName = Schema.String.check(Schema.isTrimmed(), Schema.isBetweenLength(1, 200), isStorable).annotate({
  description: "What the key is for, 1..200 characters.",
  examples: ["CI deploys"]
})

/** The value of `?confirm=` that lets a DELETE revoke the tenant's last live full key. */
export const lastFullKeyConfirmation = "last-full-key"

export const CreateApiKey = Schema.Struct({
  name: ApiKeyName,
  scope: Schema.optionalKey(ApiKeyScope),
  expiresAt: Schema.optionalKey(
    OccurredAt.annotate({
      description: "When the key stops working (401 from then on); must be in the future. Absent: never.",
      examples: ["2027-01-01T00:00:00Z"]
    })
  )
}).annotate({
  identifier: "CreateApiKey",
  examples: [{ name: "Dashboard (read only)", scope: "read", expiresAt: "2027-01-01T00:00:00Z" }]
})
export type CreateApiKey = typeof CreateApiKey.Type

/** A key as listed: everything but the key itself, which is never stored. */
export const ApiKeyInfo = Schema.Struct({
  id: ApiKeyId.annotate({ examples: [ApiKeyId.make("key_01JD0000000000000000000000")] }),
  name: Schema.String.annotate({ description: "Empty for keys issued by the admin API." }),
  prefix: Schema.String.annotate({ description: "The first characters of the key, to tell keys apart." }),
  scope: ApiKeyScope,
  createdAt: Schema.String.annotate({ description: "ISO 8601 timestamp." }),
  lastUsedAt: Schema.NullOr(Schema.String).annotate({
    description: "When the key last authenticated a request, to about a minute; null if never."
  }),
  expiresAt: Schema.NullOr(Schema.String).annotate({ description: "When the key stops working; null = never." }),
  revokedAt: Schema.NullOr(Schema.String).annotate({ description: "When the key was revoked; null = it was not." })
}).annotate({ identifier: "ApiKey" })
export type ApiKeyInfo = typeof ApiKeyInfo.Type

export const CreatedApiKey = Schema.Struct({
  id: ApiKeyId,
  key: Schema.String.annotate({
    description: "The API key. Shown only in this response: store it now, it cannot be read again."
  }),
  name: Schema.String,
  prefix: Schema.String,
  scope: ApiKeyScope,
  createdAt: Schema.String,
  expiresAt: Schema.NullOr(Schema.String)
}).annotate({ identifier: "CreatedApiKey" })
export type CreatedApiKey = typeof CreatedApiKey.Type

/** What a tenant asked to revoke turned out to be. */
export type Revocation = "revoked" | "not-found" | "last-full-key"
