/**
 * Publishing with the event-type catalog (issue 22): events of a type whose catalog entry has a realistic JSON Schema
 * (an order: nested lines, formats, enums, patterns), validated on every publish, against the same events of a tenant
 * without a catalog (whose publishes ask no catalog query). Target: throughput with the schema ≥ 0.9× without. The
 * compiled server (worker off) on PostgreSQL; each tenant has one endpoint (one delivery per publish); autocannon, 10
 * connections, 3 alternating rounds of 6 s each after a warm-up, medians. Writes bench/results/catalog-schema.md.
 *
 *   npm run bench:schema     (BENCH_DATABASE_URL: any database of the server; a scratch database codex_bench_schema
 *                             is made there and dropped after; about a minute)
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import {
  containerNodeOptions,
  deliveryBenchEnv,
  dropScratchDatabase,
  type Load,
  load,
  median,
  postJson,
  scratchDatabase,
  startServer
} from "./lib.ts"

const serverUrl = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres"
const rounds = Number(process.env.BENCH_SCHEMA_ROUNDS ?? 3)
const seconds = Number(process.env.BENCH_SCHEMA_SECONDS ?? 6)
const log = (line: string) => console.error(`[bench:schema] ${line}`)

log("npm run build (codex-api is measured as compiled JavaScript, as the container runs it)")
execFileSync("npm", ["run", "build"], { stdio: ["ignore", "ignore", "inherit"] })

/** A realistic order schema: required members, formats, enums, patterns, an array of objects. */
const orderSchema = {
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

/** A tenant with one endpoint (no receiver: the worker is off), and `order.created` catalogued or not; its key. */
const tenantWith = async (base: string, catalogued: boolean) => {
  const created = (await postJson(`${base}/admin/tenants`, { name: catalogued ? "Schema" : "No schema" })) as {
    apiKey: { key: string }
  }
  const auth = { authorization: `Bearer ${created.apiKey.key}` }
  await postJson(`${base}/v1/endpoints`, { url: "http://127.0.0.1:1029/hook" }, auth)
  if (catalogued) await postJson(`${base}/v1/event-types`, { name: "order.created", schema: orderSchema }, auth)
  return created.apiKey.key
}

const name = "codex_bench_schema"
const url = await scratchDatabase(serverUrl, name)
try {
  const server = await startServer(
    "codex-api",
    "dist/src/main.js",
    deliveryBenchEnv(containerNodeOptions(), { DATABASE_URL: url, DELIVERY_WORKER: "false" })
  )
  try {
    const keys = { plain: await tenantWith(server.base, false), schema: await tenantWith(server.base, true) }
    let n = 0
    const run = (key: string) =>
      load({
        url: `${server.base}/v1/events`,
        connections: 10,
        duration: seconds,
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
    await run(keys.plain)
    await run(keys.schema)
    const plain: Array<Load> = []
    const schema: Array<Load> = []
    for (let round = 1; round <= rounds; round++) {
      plain.push(await run(keys.plain))
      schema.push(await run(keys.schema))
      log(`round ${round}: without ${plain.at(-1)?.requestsPerSecond}/s, with ${schema.at(-1)?.requestsPerSecond}/s`)
    }
    const rate = (loads: ReadonlyArray<Load>) => median(loads.map((l) => l.requestsPerSecond))
    const p99 = (loads: ReadonlyArray<Load>) => median(loads.map((l) => l.p99Ms))
    const ratio = Math.round((rate(schema) / rate(plain)) * 100) / 100
    const errors = [...plain, ...schema].reduce((sum, l) => sum + l.errors, 0)
    const markdown =
      "## Publishing with a catalog schema\n\n" +
      `${new Date().toISOString()}: publishing \`order.created\` events with one endpoint (10 connections, ${rounds} ` +
      `alternating rounds of ${seconds} s after a warm-up, medians; the compiled server, worker off, PostgreSQL on ` +
      "the same machine), a tenant without a catalog (no catalog query) against a tenant whose type has a realistic " +
      "JSON Schema (nested " +
      "lines, `email` and `date-time` formats, an enum, a pattern) validated on every publish by its cached compiled " +
      "validator (one indexed lookup and the validation). Written by `npm run bench:schema`.\n\n" +
      "| type | publishes/s | p99 |\n|---|---|---|\n" +
      `| no catalog | ${rate(plain)} | ${p99(plain)} ms |\n` +
      `| with a schema | ${rate(schema)} | ${p99(schema)} ms |\n\n` +
      `With schema / without: **${ratio}x** (target ≥ 0.9x: ${ratio >= 0.9 ? "met" : "**not met**"}); ${errors} errors.\n`
    mkdirSync("bench/results", { recursive: true })
    writeFileSync(join("bench/results", "catalog-schema.md"), markdown)
    log(`with / without: ${ratio}x; wrote bench/results/catalog-schema.md`)
  } finally {
    await server.stop()
  }
} finally {
  await dropScratchDatabase(serverUrl, name)
}
