/**
 * A reference implementation of endpoint payload filters (src/domain/EventFilter.ts), written from the documented
 * semantics (PostgreSQL's SQL/JSON path, lax mode) without PostgreSQL, to check the compiled filters against: a path
 * through an array looks into each element (one level); a comparison holds when it holds for one item (an array
 * compared is its elements); values of different types never compare; `$not`, `$nin` and `$exists: false` hold for a
 * missing field.
 */
type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }

const isObject = (value: unknown): value is { readonly [key: string]: Json } =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** The items a path yields: member access, unwrapping an array one level (lax mode). */
const itemsAt = (document: Json, fields: ReadonlyArray<string>): ReadonlyArray<Json> => {
  let items: ReadonlyArray<Json> = [document]
  for (const field of fields) {
    const next: Array<Json> = []
    for (const item of items) {
      if (isObject(item)) {
        if (Object.hasOwn(item, field)) next.push(item[field] as Json)
      } else if (Array.isArray(item)) {
        for (const element of item as ReadonlyArray<Json>) {
          if (isObject(element) && Object.hasOwn(element, field)) next.push(element[field] as Json)
        }
      }
    }
    items = next
  }
  return items
}

/** What a comparison looks at: each item, an array's elements (one level). */
const compared = (items: ReadonlyArray<Json>): ReadonlyArray<Json> =>
  items.flatMap((item) => (Array.isArray(item) ? (item as ReadonlyArray<Json>) : [item]))

const sameScalar = (a: Json, b: Json): boolean => {
  if (a === null || b === null) return a === b
  if (typeof a !== typeof b || typeof a === "object") return false
  return a === b
}

const any = (items: ReadonlyArray<Json>, test: (value: Json) => boolean) => compared(items).some(test)

const operator = (key: string, argument: Json, fields: ReadonlyArray<string>, document: Json): boolean => {
  const items = itemsAt(document, fields)
  switch (key) {
    case "$eq":
      return any(items, (value) => sameScalar(value, argument))
    case "$in":
      return (argument as ReadonlyArray<Json>).some((option) => any(items, (value) => sameScalar(value, option)))
    case "$nin":
      return !(argument as ReadonlyArray<Json>).some((option) => any(items, (value) => sameScalar(value, option)))
    case "$gt":
      return any(items, (value) => typeof value === "number" && value > (argument as number))
    case "$gte":
      return any(items, (value) => typeof value === "number" && value >= (argument as number))
    case "$lt":
      return any(items, (value) => typeof value === "number" && value < (argument as number))
    case "$lte":
      return any(items, (value) => typeof value === "number" && value <= (argument as number))
    case "$startsWith":
      return any(items, (value) => typeof value === "string" && value.startsWith(argument as string))
    case "$exists":
      return argument === true ? items.length > 0 : items.length === 0
    default:
      throw new Error(`not an operator: ${key}`)
  }
}

const conditions = (filter: { readonly [key: string]: Json }, fields: ReadonlyArray<string>, document: Json): boolean =>
  Object.entries(filter).every(([key, value]) => {
    if (key === "$and")
      return (value as ReadonlyArray<Json>).every((part) => conditions(part as never, fields, document))
    if (key === "$or") return (value as ReadonlyArray<Json>).some((part) => conditions(part as never, fields, document))
    if (key === "$not") return !conditions(value as never, fields, document)
    if (key.startsWith("$")) return operator(key, value, fields, document)
    if (isObject(value)) return conditions(value, [...fields, key], document)
    return operator("$eq", value, [...fields, key], document)
  })

/** Whether the event `{ type, data }` matches the filter. */
export const matchesFilterReference = (filter: { readonly [key: string]: Json }, type: string, data: Json): boolean =>
  conditions(filter, [], { type, data })
