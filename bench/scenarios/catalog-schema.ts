/**
 * Publishing with the event-type catalog (issue 22): `order.created` events of a tenant whose catalog entry has a
 * realistic JSON Schema (an order: nested lines, formats, an enum, a pattern), validated on every publish by the
 * cached compiled validator, against the same events of a tenant without a catalog (whose publishes ask no catalog
 * query). Both tenants have one endpoint (one delivery per publish). Alternating rounds after a warm-up each, medians.
 * Run by `npm run bench` (its table (c)) and alone by `npm run bench:schema`.
 */
import { type Load, load, medianLoad, postJson } from "../lib.ts"

/** A realistic order schema: required members, formats, enums, patterns, an array of objects. */
export const orderSchema = {
  $schema: "https://json-schema.org/draft/2020-12/schema",
  type: "object",
  required: ["orderId", "customer", "lines", "total", "currency", "placedAt"],
  properties: {
    orderId: { type: "string", pattern: "^o_[A-Za-z0-9]+$" },
    customer: {
      type: "object",
      required: ["id", "email"],
      properties: { id: { type: "string" }, email: { type: "string", format: "email" }, name: { type: "string" } }
    },
    lines: {
      type: "array",
      minItems: 1,
      maxItems: 100,
      items: {
        type: "object",
        required: ["sku", "quantity", "price"],
        properties: {
          sku: { type: "string", minLength: 1 },
          quantity: { type: "integer", minimum: 1 },
          price: { type: "number", minimum: 0 }
        }
      }
    },
    total: { type: "number", minimum: 0 },
    currency: { enum: ["EUR", "USD", "GBP"] },
    placedAt: { type: "string", format: "date-time" },
    n: { type: "integer" }
  }
}

export interface CatalogSchemaFigures {
  readonly plain: Load
  readonly schema: Load
  /** Publishes per second with the schema / without. */
  readonly ratio: number
}

export interface CatalogSchemaOptions {
  /** The server's base URL (its worker off: the benchmark measures publishing). */
  readonly base: string
  /** Headers for `POST /admin/tenants` (the admin token, where the server asks for one). */
  readonly adminHeaders: Record<string, string>
  readonly rounds: number
  readonly seconds: number
  readonly warmupSeconds: number
  readonly connections: number
  readonly log: (line: string) => void
}

/**
 * A tenant with one endpoint, and `order.created` catalogued or not; its key. Nothing is delivered (the worker is
 * off): the endpoint only makes each publish queue a delivery. A public https address, so that staging's URL policy
 * (`npm run bench`'s server) takes it too; no connection is made to it.
 */
const tenantWith = async (options: CatalogSchemaOptions, catalogued: boolean) => {
  const created = (await postJson(
    `${options.base}/admin/tenants`,
    { name: catalogued ? "Schema" : "No schema" },
    options.adminHeaders
  )) as { apiKey: { key: string } }
  const auth = { authorization: `Bearer ${created.apiKey.key}` }
  await postJson(`${options.base}/v1/endpoints`, { url: "https://93.184.216.34/hook" }, auth)
  if (catalogued) await postJson(`${options.base}/v1/event-types`, { name: "order.created", schema: orderSchema }, auth)
  return created.apiKey.key
}

export const measureCatalogSchema = async (options: CatalogSchemaOptions): Promise<CatalogSchemaFigures> => {
  const keys = { plain: await tenantWith(options, false), schema: await tenantWith(options, true) }
  let n = 0
  const run = (key: string, duration: number) =>
    load({
      url: `${options.base}/v1/events`,
      connections: options.connections,
      duration,
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      requests: [
        {
          setupRequest: (request) => {
            n++
            const data = {
              orderId: `o_${n}`,
              customer: { id: "c_1", email: "ada@example.com", name: "Ada" },
              lines: [
                { sku: "a", quantity: 2, price: 10.5 },
                { sku: "b", quantity: 1, price: 99 }
              ],
              total: 120,
              currency: "EUR",
              placedAt: "2026-12-07T02:00:00Z",
              n
            }
            return { ...request, body: JSON.stringify({ type: "order.created", data }) }
          }
        }
      ]
    })
  await run(keys.plain, options.warmupSeconds)
  await run(keys.schema, options.warmupSeconds)
  const plain: Array<Load> = []
  const schema: Array<Load> = []
  for (let round = 1; round <= options.rounds; round++) {
    plain.push(await run(keys.plain, options.seconds))
    schema.push(await run(keys.schema, options.seconds))
    options.log(
      `round ${round}: without ${plain.at(-1)?.requestsPerSecond}/s, with ${schema.at(-1)?.requestsPerSecond}/s`
    )
  }
  const figures = { plain: medianLoad(plain), schema: medianLoad(schema) }
  const ratio =
    figures.plain.requestsPerSecond > 0
      ? Math.round((figures.schema.requestsPerSecond / figures.plain.requestsPerSecond) * 100) / 100
      : Number.NaN
  return { ...figures, ratio }
}
