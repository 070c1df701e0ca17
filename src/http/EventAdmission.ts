import { Effect, Option, Schema } from "effect"
import type { EventTypesShape } from "../../services/EventTypes.ts"
import { UnprocessableContent } from "../api/Problems.ts"
import { below, compileEventSchema, type Validator } from "../domain/EventSchema.ts"
import { deprecationHeader } from "../domain/EventTypeCatalog.ts"
import type { TenantId } from "../domain/Ids.ts"

/**
 * Whether the catalog lets a tenant publish an event (issue 22), before it is written. One indexed lookup
 * (EventTypes.admission) per publish: the tenant's strict flag and the type's entry. Its schema's compiled validator
 * is cached here by tenant and type, with the entry's version (id and update time): a changed or re-created type is
 * compiled again, its schema text read only then. The cache is bounded (least recently used out).
 */

/** How many compiled validators are kept. */
export const validatorCacheCapacity = 1_000

interface CachedValidator {
  readonly version: string
  readonly validate: Validator
}

const parseSchema = Schema.decodeUnknownOption(Schema.fromJsonString(Schema.Record(Schema.String, Schema.Json)))

/** The admission of one publish: the `Deprecation` header value when the type is deprecated, else undefined. */
export type Admit = (
  tenantId: TenantId,
  type: string,
  data: unknown
) => Effect.Effect<string | undefined, UnprocessableContent>

export const makeEventAdmission = (catalog: EventTypesShape): Admit => {
  const cache = new Map<string, CachedValidator>()
  const remember = (key: string, entry: CachedValidator) => {
    cache.delete(key)
    cache.set(key, entry)
    if (cache.size > validatorCacheCapacity) {
      const oldest = cache.keys().next()
      if (oldest.done !== true) cache.delete(oldest.value)
    }
  }

  /**
   * The validator of the entry's version: the one cached when the lookup was asked (the lookup left out the schema
   * text because it had that version: the cache may have changed since, evicted or replaced by a concurrent publish),
   * or its schema text compiled (and cached).
   */
  const validatorOf = (
    key: string,
    version: string,
    schemaText: string | undefined,
    cached: CachedValidator | undefined
  ) => {
    if (cached !== undefined && cached.version === version) {
      remember(key, cached)
      return Effect.succeed(cached.validate)
    }
    const schema = schemaText === undefined ? Option.none() : parseSchema(schemaText)
    // The lookup returns the text whenever the version differs from the cached one: absent, it changed in between.
    if (Option.isNone(schema)) return Effect.die(new Error("an event type's schema was not read with its version"))
    const compiled = compileEventSchema(schema.value)
    if (compiled._tag === "Invalid") {
      return Effect.fail(
        new UnprocessableContent({
          detail: "The event type's schema in your catalog does not compile: fix it with PATCH /v1/event-types.",
          errors: [{ pointer: "/type", message: compiled.message }]
        })
      )
    }
    remember(key, { version, validate: compiled.validate })
    return Effect.succeed(compiled.validate)
  }

  return (tenantId, type, data) =>
    Effect.gen(function* () {
      const key = `${tenantId} ${type}`
      const cached = cache.get(key)
      const admission = yield* catalog.admission(tenantId, type, cached?.version)
      const entry = admission.entry
      if (entry === undefined) {
        cache.delete(key)
        if (!admission.strict) return undefined
        return yield* new UnprocessableContent({
          detail:
            `"${type}" is not in your event-type catalog, and strict mode refuses other types: add it with ` +
            "POST /v1/event-types.",
          errors: [{ pointer: "/type", message: "is not in the catalog" }]
        })
      }
      if (entry.archived) {
        return yield* new UnprocessableContent({
          detail: `"${type}" is archived in your event-type catalog: it can no longer be published.`,
          errors: [{ pointer: "/type", message: "is archived" }]
        })
      }
      if (entry.hasSchema) {
        const validate = yield* validatorOf(key, entry.version, admission.schemaText, cached)
        const violations = validate(data)
        if (violations.length > 0) {
          return yield* new UnprocessableContent({
            detail: `\`data\` does not match the schema of "${type}" in your event-type catalog.`,
            errors: below("/data", violations)
          })
        }
      } else {
        cache.delete(key)
      }
      return entry.deprecatedAt === null ? undefined : deprecationHeader(entry.deprecatedAt)
    })
}
