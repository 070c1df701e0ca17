import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, layer } from "@effect/vitest"
import { Validator } from "@seriousme/openapi-schema-validator"
import { Effect } from "effect"
import openapiTS, { astToString } from "openapi-typescript"
import ts from "typescript"
import { createTenant, request, type WireResponse } from "./support/http.ts"
import { expectProblem } from "./support/problems.ts"
import { testServerWithSql } from "./support/sharedDatabase.ts"

/**
 * `GET /v1/event-types/openapi.json` (issue 22): an OpenAPI 3.1 document of the tenant's webhooks, valid against the
 * OpenAPI 3.1 schema (@seriousme/openapi-schema-validator), that a generator (openapi-typescript) turns into
 * TypeScript types a receiver's code compiles against (checked with the TypeScript compiler).
 */

const json = (response: WireResponse, status: number): unknown => {
  assert.strictEqual(response.status, status, response.text)
  return JSON.parse(response.text)
}

const orderSchema = {
  type: "object",
  required: ["orderId", "amount"],
  properties: {
    orderId: { type: "string" },
    amount: { type: "integer", minimum: 0 },
    lines: { type: "array", items: { type: "object", properties: { sku: { type: "string" } }, required: ["sku"] } }
  }
}

const treeSchema = {
  type: "object",
  required: ["name", "children"],
  properties: {
    name: { type: "string" },
    children: { type: "array", items: { $ref: "#" } },
    owner: { $ref: "#/$defs/user" },
    enum: { $ref: "#/$defs/user" }
  },
  $defs: { user: { type: "object", required: ["id"], properties: { id: { type: "string" } } } }
}

/** Type-checks `files` (name → text) with strict settings; the diagnostics as text. */
const typeErrors = (files: Record<string, string>): ReadonlyArray<string> => {
  const dir = mkdtempSync(join(tmpdir(), "codex-webhooks-"))
  try {
    const names = Object.entries(files).map(([name, text]) => {
      const path = join(dir, name)
      writeFileSync(path, text)
      return path
    })
    const program = ts.createProgram(names, {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      allowImportingTsExtensions: true,
      skipLibCheck: true,
      types: []
    })
    return ts
      .getPreEmitDiagnostics(program)
      .map((d) => `${d.file?.fileName ?? ""}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

layer(testServerWithSql(), { excludeTestServices: true })("the webhooks document", (it) => {
  it.effect("is valid OpenAPI 3.1 with one operation per type, codex.* included; generated types compile", () =>
    Effect.gen(function* () {
      const tenant = yield* createTenant("Document owner")
      const other = yield* createTenant("Document neighbour")
      const create = (body: Record<string, unknown>) =>
        Effect.map(request("/v1/event-types", { bearer: tenant.apiKey, json: body }), (r) => json(r, 201))
      yield* create({
        name: "order.created",
        description: "An order was placed.",
        schema: orderSchema,
        examples: [{ orderId: "o_1", amount: 4200 }]
      })
      // Internal references: `#/$defs/...` and `#` (recursion) are relative to the schema's root, which is not the
      // document's: the document rewrites them (a property named `enum` is a property, not the keyword).
      yield* create({
        name: "category.tree",
        schema: treeSchema,
        examples: [{ name: "root", children: [{ name: "leaf", children: [] }], owner: { id: "u_1" } }]
      })
      yield* create({ name: "order.legacy", deprecated: true })
      yield* create({ name: "order.gone", archived: true })
      // Both would be `on_order_created`: operation ids stay unique.
      yield* create({ name: "order_created" })
      yield* Effect.map(request("/v1/event-types", { bearer: other.apiKey, json: { name: "neighbour.only" } }), (r) =>
        json(r, 201)
      )

      const response = yield* request("/v1/event-types/openapi.json", { bearer: tenant.apiKey })
      const document = json(response, 200) as {
        openapi: string
        webhooks: Record<string, { post: Record<string, unknown> }>
      }
      assert.strictEqual(document.openapi, "3.1.0")
      const names = Object.keys(document.webhooks)
      assert.includeMembers(names, ["order.created", "order.legacy", "codex.endpoint.disabled", "codex.test"])
      assert.notInclude(names, "order.gone", "archived types are left out")
      assert.notInclude(names, "neighbour.only", "only the tenant's own catalog")
      assert.isTrue(document.webhooks["order.legacy"]?.post.deprecated)
      const operationIds = Object.values(document.webhooks).map((w) => w.post.operationId)
      assert.strictEqual(new Set(operationIds).size, operationIds.length, JSON.stringify(operationIds))
      const created = document.webhooks["order.created"]?.post as {
        requestBody: {
          content: { "application/json": { schema: { properties: { data: unknown } }; examples: unknown } }
        }
      }
      const body = created.requestBody.content["application/json"]
      assert.deepStrictEqual(body.schema.properties.data, { $ref: "#/components/schemas/order.created" })
      const schemas = (document as unknown as { components: { schemas: Record<string, unknown> } }).components.schemas
      assert.deepStrictEqual(schemas["order.created"], orderSchema, "the catalog's schema, as the tenant wrote it")
      // `$defs` become components of their own (generators would render a `$defs` member as a required property).
      const { $defs, ...treeRoot } = treeSchema
      assert.deepStrictEqual(schemas["category.tree"], {
        ...treeRoot,
        properties: {
          ...treeSchema.properties,
          children: { type: "array", items: { $ref: "#/components/schemas/category.tree" } },
          owner: { $ref: "#/components/schemas/category.tree-user" },
          enum: { $ref: "#/components/schemas/category.tree-user" }
        }
      })
      assert.deepStrictEqual(schemas["category.tree-user"], $defs.user)
      assert.deepStrictEqual(body.examples, {
        example1: {
          value: {
            type: "order.created",
            timestamp: "2026-11-25T10:00:00.000Z",
            data: { orderId: "o_1", amount: 4200 }
          }
        }
      })

      const validator = new Validator()
      const verdict = yield* Effect.promise(() => validator.validate(document))
      assert.isTrue(verdict.valid, JSON.stringify(verdict.errors))
      assert.strictEqual(validator.version, "3.1")

      const generated = astToString(yield* Effect.promise(() => openapiTS(document as never)))
      const receiver = [
        'import type { webhooks } from "./webhooks.ts"',
        'type Created = webhooks["order.created"]["post"]["requestBody"]["content"]["application/json"]',
        'type Disabled = webhooks["codex.endpoint.disabled"]["post"]["requestBody"]["content"]["application/json"]',
        'export const ok: Created = { type: "order.created", timestamp: "t", data: { orderId: "o_1", amount: 1 } }',
        'export const lines: Created["data"]["lines"] = [{ sku: "s" }]',
        'export const reason: Disabled["data"]["reason"] = "gone"',
        "// @ts-expect-error amount is a number",
        'export const wrongAmount: Created = { type: "order.created", timestamp: "t", data: { orderId: "o", amount: "1" } }',
        "// @ts-expect-error orderId is required",
        'export const missing: Created = { type: "order.created", timestamp: "t", data: { amount: 1 } }',
        "// @ts-expect-error the type is the operation's own",
        'export const otherType: Created = { type: "order.legacy", timestamp: "t", data: { orderId: "o", amount: 1 } }',
        "// @ts-expect-error not a reason",
        'export const badReason: Disabled["data"]["reason"] = "bored"',
        'type Tree = webhooks["category.tree"]["post"]["requestBody"]["content"]["application/json"]["data"]',
        'export const tree: Tree = { name: "a", children: [{ name: "b", children: [] }], owner: { id: "u" } }',
        "// @ts-expect-error a child is a tree: its children are required",
        'export const badChild: Tree = { name: "a", children: [{ name: "b" }] }',
        "// @ts-expect-error the owner is a user: its id is a string",
        'export const badOwner: Tree = { name: "a", children: [], owner: { id: 1 } }'
      ].join("\n")
      assert.deepStrictEqual(typeErrors({ "webhooks.ts": generated, "receiver.ts": receiver }), [])
    })
  )

  it.effect("needs the tenant's key", () =>
    Effect.gen(function* () {
      expectProblem(yield* request("/v1/event-types/openapi.json"), 401)
    })
  )
})
