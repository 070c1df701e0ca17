import { Schema } from "effect"
import { isStorableText, storableTextMessage } from "./StorableText.ts"

/**
 * An endpoint's payload filter: a JSON document matched against each event as `{ "type": ..., "data": ... }` at
 * fan-out, so that an event creates deliveries only for the endpoints whose filter it matches (the shape Hookdeck
 * Outpost documents). A member names a field, nested objects a path into the event; its value is either a literal
 * (equality) or an object of operators:
 *
 * - `$eq`, `$in: [...]`, `$nin: [...]` — equal to a literal (string, number, boolean or null), to one of, to none of;
 * - `$gt`, `$gte`, `$lt`, `$lte` — numbers only;
 * - `$startsWith` — strings;
 * - `$exists: true | false`;
 * - `$and: [...]`, `$or: [...]`, `$not: {...}` — at any level.
 *
 * Semantics are those of PostgreSQL's SQL/JSON path in lax mode, which evaluates them (`compileFilter`): a path
 * through an array looks into each element (one level), a comparison against an array holds when it holds for one of
 * its elements, a comparison of different types (a string against a number) or of a missing field is false; `$not`,
 * `$nin` and `$exists: false` are true for a missing field.
 */
export type EventFilter = Schema.Json

export const maxFilterDepth = 8
export const maxFilterConditions = 64
export const maxFilterBytes = 4096

const comparisons = { $gt: ">", $gte: ">=", $lt: "<", $lte: "<=" } as const
const operators = new Set(["$eq", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$startsWith", "$exists", "$not"])

/** Why the filter cannot be used, and where (`data.amount.$gt`); undefined when it can. */
export interface FilterProblem {
  readonly path: string
  readonly message: string
}

type Literal = string | number | boolean | null

/** A literal the database can hold: strings without NUL or unpaired surrogates (StorableText), finite numbers. */
const isLiteral = (value: unknown): value is Literal =>
  value === null ||
  (typeof value === "string" && isStorableText(value)) ||
  typeof value === "boolean" ||
  (typeof value === "number" && Number.isFinite(value))

const isObject = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const at = (path: ReadonlyArray<string>) => (path.length === 0 ? "(the filter)" : path.join("."))

/** A JSON path string literal: double quotes, backslash escapes. */
const quoted = (text: string) => JSON.stringify(text)

const literal = (value: Literal) => (typeof value === "string" ? quoted(value) : String(value))

/** `P` true, not unknown: a comparison of different types is unknown in SQL/JSON; here it is false. */
const definite = (predicate: string) => `((${predicate}) && !((${predicate}) is unknown))`

/**
 * The filter checked and compiled into one SQL/JSON path predicate (lax mode), or the first problem found. Bounded:
 * `maxFilterDepth` levels, `maxFilterConditions` conditions, `maxFilterBytes` of JSON.
 */
export const compileFilter = (
  filter: unknown
):
  | { readonly _tag: "Compiled"; readonly jsonPath: string }
  | { readonly _tag: "Invalid"; readonly problem: FilterProblem } => {
  let conditions = 0
  // The first problem found; the walk goes on where it can, but stops descending at a problem.
  let problem: FilterProblem | undefined
  const fail = (path: ReadonlyArray<string>, message: string): string => {
    problem ??= { path: at(path), message }
    return "false"
  }
  const accessor = (fields: ReadonlyArray<string>) => `$${fields.map((field) => `.${quoted(field)}`).join("")}`

  /** The conditions of one object: its members ANDed (fields, or operators on `fields` when it is a field's value). */
  const object = (
    value: Readonly<Record<string, unknown>>,
    fields: ReadonlyArray<string>,
    path: ReadonlyArray<string>,
    depth: number
  ): string => {
    if (depth > maxFilterDepth) return fail(path, `must not nest deeper than ${maxFilterDepth} levels`)
    const entries = Object.entries(value)
    if (entries.length === 0) return fail(path, "must not be empty")
    return entries.map(([key, inner]) => member(key, inner, fields, [...path, key], depth)).join(" && ")
  }

  const counted = (path: ReadonlyArray<string>) => {
    conditions++
    if (conditions > maxFilterConditions) fail(path, `must not hold more than ${maxFilterConditions} conditions`)
  }

  const list = (value: unknown, path: ReadonlyArray<string>): ReadonlyArray<unknown> => {
    if (Array.isArray(value) && value.length > 0) return value
    fail(path, "must be a non-empty array")
    return []
  }

  const member = (
    key: string,
    value: unknown,
    fields: ReadonlyArray<string>,
    path: ReadonlyArray<string>,
    depth: number
  ): string => {
    const target = accessor(fields)
    switch (key) {
      case "$and":
      case "$or": {
        const parts = list(value, path).map((part, i) => {
          if (!isObject(part)) return fail([...path, String(i)], "must be an object")
          return `(${object(part, fields, [...path, String(i)], depth + 1)})`
        })
        return `(${parts.join(key === "$and" ? " && " : " || ")})`
      }
      case "$not":
        if (!isObject(value)) return fail(path, "must be an object")
        return `!(${object(value, fields, path, depth + 1)})`
      case "$eq":
        counted(path)
        if (!isLiteral(value)) return fail(path, "must be a string, a number, a boolean or null")
        return definite(`${target} == ${literal(value)}`)
      case "$in":
      case "$nin": {
        counted(path)
        const any = list(value, path).map((item, i) => {
          if (!isLiteral(item)) return fail([...path, String(i)], "must be a string, a number, a boolean or null")
          return definite(`${target} == ${literal(item)}`)
        })
        const either = `(${any.join(" || ")})`
        return key === "$in" ? either : `!${either}`
      }
      case "$gt":
      case "$gte":
      case "$lt":
      case "$lte":
        counted(path)
        if (typeof value !== "number" || !Number.isFinite(value)) return fail(path, "must be a number")
        return definite(`${target} ${comparisons[key]} ${String(value)}`)
      case "$startsWith":
        counted(path)
        if (typeof value !== "string" || !isStorableText(value))
          return fail(path, "must be a string without NUL characters or unpaired surrogates")
        return definite(`${target} starts with ${quoted(value)}`)
      case "$exists":
        counted(path)
        if (typeof value !== "boolean") return fail(path, "must be true or false")
        return value ? `exists(${target})` : `!exists(${target})`
      default: {
        if (key.startsWith("$")) return fail(path, `is not an operator (${[...operators, "$and", "$or"].join(", ")})`)
        if (key.length === 0 || key.length > 128) return fail(path, "field names must be 1 to 128 characters")
        if (!isStorableText(key)) return fail(path, `field names ${storableTextMessage}`)
        const field = [...fields, key]
        if (isObject(value)) return object(value, field, path, depth + 1)
        counted(path)
        if (!isLiteral(value)) return fail(path, "must be a literal (string, number, boolean, null) or an object")
        return definite(`${accessor(field)} == ${literal(value)}`)
      }
    }
  }

  if (!isObject(filter)) fail([], "must be an object")
  else if (JSON.stringify(filter).length > maxFilterBytes) fail([], `must not exceed ${maxFilterBytes} bytes of JSON`)
  const jsonPath = problem === undefined && isObject(filter) ? object(filter, [], [], 1) : "false"
  return problem === undefined ? { _tag: "Compiled", jsonPath } : { _tag: "Invalid", problem }
}

/** The filter as the API takes it: any JSON object; `compileFilter` judges it (422 with the path of the mistake). */
export const EndpointFilter = Schema.Record(Schema.String, Schema.Json).annotate({
  description:
    "Deliver only the events this document matches, evaluated against `{ type, data }` when the event is published: " +
    "members name fields (nested objects: paths), values are literals (equality) or operators — `$eq`, `$in`, " +
    "`$nin`, `$gt`, `$gte`, `$lt`, `$lte` (numbers), `$startsWith`, `$exists`, `$and`, `$or`, `$not`. At most " +
    `${maxFilterDepth} levels, ${maxFilterConditions} conditions and ${maxFilterBytes} bytes. \`null\` (on an update) removes it.`,
  examples: [{ type: { $startsWith: "order." }, data: { total: { $gte: 100 }, currency: { $in: ["EUR", "USD"] } } }]
})
