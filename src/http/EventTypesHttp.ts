import { Effect, Option, Schema } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { EventTypes } from "../../services/EventTypes.ts"
import { Api } from "../api/Api.ts"
import { Conflict, NotFound, UnprocessableContent } from "../api/Problems.ts"
import { CurrentTenant } from "../api/Security.ts"
import { EventType } from "../domain/Event.ts"
import { below, compileEventSchema, type SchemaViolation } from "../domain/EventSchema.ts"
import { catalogDocumentName } from "../domain/EventTypeCatalog.ts"
import { EventTypeId } from "../domain/Ids.ts"
import { isOperationalType, operationalPrefix } from "../domain/OperationalEvents.ts"
import { packageVersion } from "../domain/PackageInfo.ts"
import { webhooksDocument } from "../domain/WebhooksDocument.ts"
import { pageRequest, pageResponse } from "./Cursor.ts"

const noSuchType = new NotFound({ detail: "No event type of this name in your catalog." })

/** A path name, checked as a type name before any query (a malformed one names nothing: 404, as an unknown one). */
const typeName = (raw: string) => (Schema.is(EventType)(raw) ? Effect.succeed(raw) : Effect.fail(noSuchType))

/** Names the catalog cannot hold: the operational namespace, and the generated document's path segment. */
const allowedName = (name: string) => {
  if (isOperationalType(name)) {
    return Effect.fail(
      new UnprocessableContent({
        detail: `Event types starting with "${operationalPrefix}" are reserved for codex-api's operational events.`
      })
    )
  }
  if (name === catalogDocumentName) {
    return Effect.fail(
      new UnprocessableContent({ detail: `"${catalogDocumentName}" is reserved: it names the catalog's document.` })
    )
  }
  // Dot-segments: a URL path cannot name them (clients resolve them away), so the type could not be read or changed.
  if (name === "." || name === "..") {
    return Effect.fail(
      new UnprocessableContent({ detail: `"${name}" cannot name a catalog type: it is a dot-segment.` })
    )
  }
  return Effect.void
}

/**
 * The schema and the examples as they will be stored agree: the schema compiles (draft 2020-12), and each example
 * matches it. The 422 names the failing pointers in the request body (`/schema`, `/examples/1/amount`).
 */
const consistent = (schema: object | null, examples: ReadonlyArray<unknown>) => {
  if (schema === null) return Effect.void
  const compiled = compileEventSchema(schema)
  if (compiled._tag === "Invalid") {
    return Effect.fail(
      new UnprocessableContent({
        detail: "`schema` is not a JSON Schema (draft 2020-12) that compiles.",
        errors: [{ pointer: "/schema", message: compiled.message }]
      })
    )
  }
  const violations: Array<SchemaViolation> = examples.flatMap((example, index) =>
    below(`/examples/${index}`, compiled.validate(example))
  )
  return violations.length === 0
    ? Effect.void
    : Effect.fail(new UnprocessableContent({ detail: "The examples do not match `schema`.", errors: violations }))
}

export const EventTypesHttp = HttpApiBuilder.group(
  Api,
  "eventTypes",
  Effect.fn(function* (handlers) {
    const catalog = yield* EventTypes
    return handlers
      .handle("document", () =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const types = yield* catalog.all(tenant.id)
          return webhooksDocument({ title: "codex-api webhooks", version: packageVersion, types })
        })
      )
      .handle("create", ({ payload }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          yield* allowedName(payload.name)
          yield* consistent(payload.schema ?? null, payload.examples ?? [])
          const { name, ...fields } = payload
          return yield* catalog
            .create(tenant.id, name, fields)
            .pipe(
              Effect.catchTag("EventTypeExists", () =>
                Effect.fail(new Conflict({ detail: `Your catalog already has an event type named "${name}".` }))
              )
            )
        })
      )
      .handle("list", ({ query }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const list = { name: "event-types", owner: tenant.id, isId: Schema.is(EventTypeId) }
          const page = yield* catalog.list(tenant.id, yield* pageRequest(list, query))
          return pageResponse(list)(page)
        })
      )
      .handle("get", ({ params }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const name = yield* typeName(params.name)
          const found = yield* catalog.get(tenant.id, name)
          if (Option.isNone(found)) return yield* noSuchType
          return found.value
        })
      )
      .handle("update", ({ params, payload }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const name = yield* typeName(params.name)
          const current = yield* catalog.get(tenant.id, name)
          if (Option.isNone(current)) return yield* noSuchType
          const schema = payload.schema !== undefined ? payload.schema : current.value.schema
          yield* consistent(schema, payload.examples ?? current.value.examples)
          const updated = yield* catalog.update(tenant.id, name, payload)
          if (Option.isNone(updated)) return yield* noSuchType
          return updated.value
        })
      )
      .handle("delete", ({ params }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const name = yield* typeName(params.name)
          if (!(yield* catalog.delete(tenant.id, name))) return yield* noSuchType
        })
      )
  })
)
