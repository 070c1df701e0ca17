import { Ajv2020, type ErrorObject } from "ajv/dist/2020.js"
import formats from "ajv-formats"
import { linearRegExp } from "./LinearRegExp.ts"

/**
 * Compiling a catalog type's JSON Schema (draft 2020-12) with Ajv, and reading its verdicts as JSON pointers. Ajv
 * throws on a schema it cannot compile (not a valid schema, an unresolvable `$ref`, an unknown format): that is caught
 * here and returned as `Invalid`, so a bad schema is a 422 for its author, never a 500.
 */

/** One violation of a schema: where (an RFC 6901 pointer into the validated document) and what. */
export interface SchemaViolation {
  readonly pointer: string
  readonly message: string
}

/** A compiled schema: the violations of a value (none = it matches), at most `maxViolations` of them. */
export type Validator = (value: unknown) => ReadonlyArray<SchemaViolation>

export type Compilation =
  | { readonly _tag: "Compiled"; readonly validate: Validator }
  | { readonly _tag: "Invalid"; readonly message: string }

/** How many violations one verdict reports: enough to fix a payload, bounded for a pathological one. */
export const maxViolations = 20

/**
 * Ajv options: `allErrors` so that each violation is reported, `strict: false` so that unknown keywords (`x-...`,
 * vocabularies of other tools) and unknown formats are annotations as the specification says (Ajv's warnings about
 * them are not logged), and the standard formats (`date-time`, `email`, `uuid`...) checked.
 */
const options = { allErrors: true, strict: false, validateFormats: true, logger: false } as const

/** Checks a schema against the draft 2020-12 meta-schema; it never registers a tenant's schema. */
const metaSchema = new Ajv2020(options)

/**
 * Each schema is compiled by an Ajv instance of its own (without the meta-schemas: `metaSchema` checked it already),
 * dropped with it: a shared registry would let one tenant's `$id` (nested ones included) collide with another's, or
 * replace the meta-schema for everyone, and would grow for good. Its patterns run on RE2 (see LinearRegExp).
 */
const compiler = () => {
  const ajv = new Ajv2020({ ...options, meta: false, validateSchema: false, code: { regExp: linearRegExp } })
  formats.default(ajv)
  return ajv
}

const escapeToken = (token: string): string => token.replaceAll("~", "~0").replaceAll("/", "~1")

/** The pointer of an Ajv error: a missing required member is pointed at where it should be. */
const violationOf = (error: ErrorObject): SchemaViolation => {
  const missing: unknown = error.params.missingProperty
  const at = error.instancePath
  if ((error.keyword === "required" || error.keyword === "dependentRequired") && typeof missing === "string") {
    return { pointer: `${at}/${escapeToken(missing)}`, message: error.message ?? "is required" }
  }
  return { pointer: at, message: error.message ?? `fails \`${error.keyword}\`` }
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/** Compiles `schema`. Violations point into the validated value (`""` is the value itself): see `below`. */
export const compileEventSchema = (schema: object): Compilation => {
  try {
    if (!metaSchema.validateSchema(schema)) {
      return { _tag: "Invalid", message: `schema is invalid: ${metaSchema.errorsText(metaSchema.errors)}` }
    }
    const compiled = compiler().compile(schema)
    return {
      _tag: "Compiled",
      validate: (value) => {
        try {
          if (compiled(value)) return []
          return (compiled.errors ?? []).slice(0, maxViolations).map(violationOf)
        } catch (error) {
          return [{ pointer: "", message: `could not be validated: ${messageOf(error)}` }]
        }
      }
    }
  } catch (error) {
    return { _tag: "Invalid", message: messageOf(error) }
  }
}

/** Violations of a value found at `base` in the request body (`/data`, `/examples/0`): their pointers from the body. */
export const below = (base: string, violations: ReadonlyArray<SchemaViolation>): ReadonlyArray<SchemaViolation> =>
  violations.map((violation) => ({ pointer: base + violation.pointer, message: violation.message }))
