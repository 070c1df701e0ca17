import { assert, describe, it } from "@effect/vitest"
import { schemaComponents } from "../src/domain/SchemaComponents.ts"

/** Tenants' schemas placed as OpenAPI components (the webhooks document): references kept pointing where they did. */

describe("schemaComponents", () => {
  it("rewrites internal references; hoists $defs under names no type holds; leaves data, anchors and $id alone", () => {
    // A type is already called `a-user`: the hoisted `user` of `a` takes the next name.
    const components = schemaComponents(["a", "a-user"])
    const ref = components.place("a", {
      type: "object",
      properties: {
        self: { $ref: "#" },
        user: { $ref: "#/$defs/user" },
        userId: { $ref: "#/$defs/user/properties/id" },
        spaced: { $ref: "#/$defs/two%20words" },
        slashed: { $ref: "#/$defs/a~1b" },
        sibling: { $ref: "#/properties/self" },
        anchored: { $ref: "#node" },
        remote: { $ref: "https://example.com/s.json#/x" },
        fixed: { const: { $ref: "#/$defs/user" } },
        resource: { $id: "https://example.com/r", $ref: "#/$defs/inner", $defs: { inner: { type: "string" } } }
      },
      $defs: {
        user: { type: "object", properties: { id: { type: "string" }, friend: { $ref: "#/$defs/user" } } },
        "two words": { type: "string" },
        "a/b": { type: "integer" }
      }
    })
    assert.deepStrictEqual(ref, { $ref: "#/components/schemas/a" })
    const root = components.schemas.a as { properties: Record<string, unknown>; $defs?: unknown }
    assert.isUndefined(root.$defs)
    assert.deepStrictEqual(root.properties, {
      self: { $ref: "#/components/schemas/a" },
      user: { $ref: "#/components/schemas/a-user-2" },
      userId: { $ref: "#/components/schemas/a-user-2/properties/id" },
      spaced: { $ref: "#/components/schemas/a-two_words" },
      slashed: { $ref: "#/components/schemas/a-a_b" },
      sibling: { $ref: "#/components/schemas/a/properties/self" },
      anchored: { $ref: "#node" },
      remote: { $ref: "https://example.com/s.json#/x" },
      fixed: { const: { $ref: "#/$defs/user" } },
      resource: { $id: "https://example.com/r", $ref: "#/$defs/inner", $defs: { inner: { type: "string" } } }
    })
    assert.deepStrictEqual(components.schemas["a-user-2"], {
      type: "object",
      properties: { id: { type: "string" }, friend: { $ref: "#/components/schemas/a-user-2" } }
    })
    assert.deepStrictEqual(components.schemas["a-two_words"], { type: "string" })
    assert.deepStrictEqual(components.schemas["a-a_b"], { type: "integer" })
  })

  it("a schema with its own $id resolves within itself: placed unchanged", () => {
    const components = schemaComponents(["b"])
    const schema = { $id: "https://example.com/b", $ref: "#/$defs/x", $defs: { x: { type: "string" } } }
    components.place("b", schema)
    assert.deepStrictEqual(components.schemas.b, schema)
  })
})
