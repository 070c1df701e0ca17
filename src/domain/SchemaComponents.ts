import type { Schema } from "effect"

/**
 * Tenants' JSON Schemas placed in an OpenAPI document's `components.schemas`. A schema written alone resolves its
 * internal references (`#`, `#/$defs/user`) against its own root; inside the document `#` is the document's root, so
 * each reference is rewritten to the same place under the schema's component. Its top-level `$defs` become
 * components of their own (`<type>-<def>`): a valid document either way, but generators render a `$defs` member as a
 * required property of the type (openapi-typescript #2664), which no delivered payload has.
 *
 * A schema with its own `$id` (at the root, or a nested resource) resolves `#` within itself: left as it is.
 * References to anchors (`#name`) and to other documents are left too.
 */

type JsonObject = { readonly [key: string]: Schema.Json }

/** Keywords whose values are instances, not schemas: a `$ref` member there is data, never rewritten. */
const instanceKeywords = new Set(["const", "enum", "examples", "default"])

/** Keywords whose values map names to schemas: their member names are not keywords (a property may be `enum`). */
const schemaMaps = new Set(["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"])

const isObject = (value: Schema.Json): value is JsonObject =>
  value !== null && typeof value === "object" && !Array.isArray(value)

/** `$ref` targets rewritten by `rewrite`, everywhere a schema can hold one. */
const withReferences = (schema: Schema.Json, rewrite: (ref: string) => string): Schema.Json => {
  if (Array.isArray(schema)) return schema.map((item) => withReferences(item, rewrite))
  if (!isObject(schema) || typeof schema.$id === "string") return schema
  const out: { [key: string]: Schema.Json } = {}
  for (const [key, value] of Object.entries(schema)) {
    if (key === "$ref" && typeof value === "string") out[key] = rewrite(value)
    else if (instanceKeywords.has(key)) out[key] = value
    else if (schemaMaps.has(key) && isObject(value)) {
      out[key] = Object.fromEntries(Object.entries(value).map(([name, sub]) => [name, withReferences(sub, rewrite)]))
    } else out[key] = withReferences(value, rewrite)
  }
  return out
}

const unescapeToken = (token: string): string => token.replaceAll("~1", "/").replaceAll("~0", "~")

const decoded = (fragment: string): string | undefined => {
  try {
    return decodeURIComponent(fragment)
  } catch {
    return undefined
  }
}

/** The components of a document: names taken first by the types themselves, so that no `$defs` entry shadows one. */
export interface SchemaComponents {
  /** Places `schema` as the component `name` (an event-type name, a valid component name); its `$ref`. */
  readonly place: (name: string, schema: Schema.Json) => Schema.Json
  readonly schemas: { readonly [name: string]: Schema.Json }
}

export const schemaComponents = (reserved: ReadonlyArray<string>): SchemaComponents => {
  const schemas: { [name: string]: Schema.Json } = {}
  const taken = new Set(reserved)
  const uniqueName = (base: string) => {
    let name = base
    for (let n = 2; taken.has(name); n++) name = `${base}-${n}`
    taken.add(name)
    return name
  }
  const refTo = (name: string) => `#/components/schemas/${name}`
  const place = (name: string, schema: Schema.Json): Schema.Json => {
    if (!isObject(schema) || typeof schema.$id === "string") {
      schemas[name] = schema
      return { $ref: refTo(name) }
    }
    const defs = isObject(schema.$defs ?? null) ? (schema.$defs as JsonObject) : {}
    const hoisted = new Map(
      Object.keys(defs).map((def) => [def, uniqueName(`${name}-${def.replaceAll(/[^A-Za-z0-9._-]/g, "_")}`)])
    )
    const rewrite = (ref: string): string => {
      if (ref === "#") return refTo(name)
      if (!ref.startsWith("#/")) return ref
      // Tokens as written (percent-encoded in a URI fragment, `~1` for `/`): the rest of the path is kept verbatim.
      const [first, def, ...rest] = ref.slice(2).split("/")
      const defName = def === undefined ? undefined : decoded(def)
      const target = first === "$defs" && defName !== undefined ? hoisted.get(unescapeToken(defName)) : undefined
      if (target !== undefined) return refTo(target) + rest.map((token) => `/${token}`).join("")
      return refTo(name) + ref.slice(1)
    }
    const { $defs: _defs, ...root } = schema
    schemas[name] = withReferences(root, rewrite)
    for (const [def, component] of hoisted) schemas[component] = withReferences(defs[def] ?? {}, rewrite)
    return { $ref: refTo(name) }
  }
  return { place, schemas }
}
