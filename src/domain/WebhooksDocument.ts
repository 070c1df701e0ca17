import { Schema } from "effect"
import type { CatalogEventType } from "./EventTypeCatalog.ts"
import { operationalEventData } from "./OperationalEvents.ts"
import { schemaComponents } from "./SchemaComponents.ts"

/**
 * The OpenAPI 3.1 document a tenant's receivers generate types from (`GET /v1/event-types/openapi.json`): one
 * `webhooks` entry per catalog type (archived ones left out) and per operational `codex.*` type, whose `post`
 * request body is what the delivery worker sends (src/domain/Delivery.ts `webhookBody`, Standard Webhooks):
 * `{ type, timestamp, data }` with `data` a reference to the type's schema, kept under `components.schemas` by the
 * type's name (so that generators name the data types too; see SchemaComponents). OpenAPI 3.1's default schema dialect is JSON Schema
 * draft 2020-12, the catalog's.
 */

type JsonObject = { readonly [key: string]: Schema.Json }

/** A webhook's request body schema: the envelope, with `data` as given. */
const envelope = (type: string, data: Schema.Json): JsonObject => ({
  type: "object",
  required: ["type", "timestamp", "data"],
  properties: {
    type: { type: "string", const: type },
    timestamp: {
      type: "string",
      format: "date-time",
      description: "When the event occurred (its `occurredAt`), ISO 8601."
    },
    data
  }
})

const signatureHeaderNames: ReadonlyArray<readonly [string, string]> = [
  ["webhook-id", "The event id; the same on every attempt (deduplicate on it)."],
  ["webhook-timestamp", "Unix seconds of the attempt, signed."],
  ["webhook-signature", "`v1,<base64 HMAC-SHA256>` signatures of `<id>.<timestamp>.<body>`, space-separated."]
]

const signatureHeaders: ReadonlyArray<Schema.Json> = signatureHeaderNames.map(([name, description]) => ({
  name,
  in: "header",
  required: true,
  description,
  schema: { type: "string" }
}))

const responses: JsonObject = {
  "2XX": { description: "Received: any 2xx acknowledges the delivery." },
  "410": { description: "Gone: the endpoint is disabled and receives nothing more." },
  default: { description: "Anything else is a failed attempt, retried with backoff." }
}

/** A webhook operation. */
const operation = (input: {
  readonly type: string
  readonly operationId: string
  readonly summary: string
  readonly description: string
  readonly data: Schema.Json
  readonly examples: ReadonlyArray<Schema.Json>
  readonly deprecated: boolean
}): JsonObject => {
  const examples: { [key: string]: Schema.Json } = {}
  input.examples.forEach((data, index) => {
    examples[`example${index + 1}`] = {
      value: { type: input.type, timestamp: "2026-11-25T10:00:00.000Z", data }
    }
  })
  return {
    post: {
      operationId: input.operationId,
      summary: input.summary,
      ...(input.description === "" ? {} : { description: input.description }),
      ...(input.deprecated ? { deprecated: true } : {}),
      parameters: signatureHeaders,
      requestBody: {
        required: true,
        content: {
          "application/json": {
            schema: envelope(input.type, input.data),
            ...(input.examples.length === 0 ? {} : { examples })
          }
        }
      },
      responses
    }
  }
}

/** Any JSON object: the `data` of a type without a schema. */
const anyObject: JsonObject = { type: "object" }

/** Each operational type's `data` schema, from its Effect schema, inline (no references: the types are flat). */
const operationalData = (schema: Schema.Top): Schema.Json => {
  const document = Schema.toJsonSchemaDocument(schema, { referencePolicy: () => undefined })
  return JSON.parse(JSON.stringify(document.schema)) as Schema.Json
}

export const webhooksDocument = (input: {
  readonly title: string
  readonly version: string
  readonly types: ReadonlyArray<CatalogEventType>
}): JsonObject => {
  const webhooks: { [key: string]: Schema.Json } = {}
  const listed = input.types.filter((type) => !type.archived)
  // Each type's `data` schema is the component named after the type (event-type names are valid component names).
  const components = schemaComponents([...listed.map((type) => type.name), ...Object.keys(operationalEventData)])
  // `operationId`s are derived from the types so that generators name them stably, and must be unique: `order.created`
  // and `order_created` would both read `on_order_created`, so the later one (by name) gets a suffix.
  const taken = new Set<string>()
  const operationIdOf = (type: string) => {
    const base = `on_${type.replaceAll(/[^A-Za-z0-9_]/g, "_")}`
    let id = base
    for (let n = 2; taken.has(id); n++) id = `${base}_${n}`
    taken.add(id)
    return id
  }
  for (const type of listed) {
    webhooks[type.name] = operation({
      type: type.name,
      operationId: operationIdOf(type.name),
      summary: type.name,
      description: type.description,
      data: components.place(type.name, type.schema ?? anyObject),
      examples: type.examples,
      deprecated: type.deprecated
    })
  }
  for (const [type, schema] of Object.entries(operationalEventData)) {
    webhooks[type] = operation({
      type,
      operationId: operationIdOf(type),
      summary: type,
      description: "An operational event of codex-api (received only by endpoints that subscribe to it by name).",
      data: components.place(type, operationalData(schema)),
      examples: [],
      deprecated: false
    })
  }
  return {
    openapi: "3.1.0",
    info: {
      title: input.title,
      version: input.version,
      description:
        "The webhooks your endpoints receive: one operation per event type, its request body as delivered. Verify " +
        "the signature (Standard Webhooks) before trusting the body."
    },
    webhooks,
    components: { schemas: components.schemas }
  }
}
