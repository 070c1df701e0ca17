import { assert, describe, it } from "@effect/vitest"
import { below, compileEventSchema, maxViolations } from "../src/domain/EventSchema.ts"
import { unmatchedPattern } from "../src/domain/EventTypeCatalog.ts"

/** The catalog's schema compilation (Ajv, draft 2020-12) and its pointers, without a server. */

const compiled = (schema: object) => {
  const result = compileEventSchema(schema)
  if (result._tag === "Invalid") return assert.fail(result.message)
  return result.validate
}

describe("EventSchema", () => {
  it("points at each violation, escaping ~ and / in member names (RFC 6901); a missing member where it belongs", () => {
    const validate = compiled({
      type: "object",
      required: ["a/b", "c~d"],
      properties: { list: { type: "array", items: { type: "integer" } } }
    })
    assert.deepStrictEqual(
      validate({ list: [1, "x", 3, "y"] }).map((v) => v.pointer),
      ["/a~1b", "/c~0d", "/list/1", "/list/3"]
    )
    assert.deepStrictEqual(validate({ "a/b": 1, "c~d": 2 }), [])
    assert.deepStrictEqual(
      below("/data", validate({ "a/b": 1 })).map((v) => v.pointer),
      ["/data/c~0d"]
    )
  })

  it("refuses what does not compile instead of throwing; reports at most maxViolations", () => {
    assert.strictEqual(compileEventSchema({ type: 12 })._tag, "Invalid")
    assert.strictEqual(compileEventSchema({ $ref: "#/$defs/missing" })._tag, "Invalid")
    // An unknown format is an annotation (draft 2020-12): accepted, checks nothing.
    assert.deepStrictEqual(compiled({ type: "string", format: "no-such-format" })("anything"), [])
    const many = compiled({ type: "array", items: { type: "string" } })
    assert.strictEqual(many(Array.from({ length: 100 }, (_, i) => i)).length, maxViolations)
  })

  it("a tenant's $id cannot reach another's schema or the meta-schema", () => {
    const metaId = "https://json-schema.org/draft/2020-12/schema"
    compileEventSchema({ $id: metaId, type: "object" })
    compileEventSchema({ $defs: { a: { $id: "https://json-schema.org/draft/2020-12/meta/validation" } } })
    const nested = { $defs: { a: { $id: "https://example.com/a", type: "string" } }, $ref: "https://example.com/a" }
    assert.strictEqual(compileEventSchema(nested)._tag, "Compiled")
    assert.strictEqual(compileEventSchema(nested)._tag, "Compiled", "the same nested $id again: no collision")
    // The meta-schema still judges everyone's schemas, and a schema naming it still compiles.
    const invalid = compileEventSchema({ type: 12 })
    assert.strictEqual(invalid._tag === "Invalid" && invalid.message.startsWith("schema is invalid"), true)
    assert.strictEqual(compileEventSchema({ $schema: metaId, type: "object" })._tag, "Compiled")
  })

  it("checks formats, and two schemas with the same $id compile independently", () => {
    const first = compiled({ $id: "https://example.com/s", type: "object", required: ["a"] })
    const second = compiled({ $id: "https://example.com/s", type: "object", required: ["b"] })
    assert.deepStrictEqual(
      first({ b: 1 }).map((v) => v.pointer),
      ["/a"]
    )
    assert.deepStrictEqual(
      second({ a: 1 }).map((v) => v.pointer),
      ["/b"]
    )
    const dated = compiled({ type: "string", format: "date-time" })
    assert.lengthOf(dated("yesterday"), 1)
    assert.deepStrictEqual(dated("2026-12-07T02:00:00Z"), [])
  })
})

describe("EventSchema patterns (RE2: linear time)", () => {
  // On V8's backtracking engine this pattern takes exponential time in the input's length: 5,000 characters would
  // hold the process for longer than the test's timeout (ReDoS). On RE2 it is one linear pass.
  it("runs a catastrophic-backtracking pattern on a long string in linear time, in `pattern` and `patternProperties`", () => {
    const evil = "^(a+)+$"
    const hostile = `${"a".repeat(5000)}!`
    const validate = compiled({
      type: "object",
      properties: { name: { type: "string", pattern: evil } },
      patternProperties: { [evil]: { type: "integer" } }
    })
    assert.deepStrictEqual(
      validate({ name: hostile, [hostile]: "x" }).map((v) => v.pointer),
      ["/name"],
      "the hostile member name does not match the property pattern, so only /name fails"
    )
    assert.deepStrictEqual(validate({ name: "aaaa", aaa: 1 }), [])
    assert.deepStrictEqual(
      validate({ aaa: "x" }).map((v) => v.pointer),
      ["/aaa"]
    )
  })

  it("reads ECMAScript's \\u escapes, and refuses lookaround and backreferences with a message naming the pattern", () => {
    const accented = compiled({ type: "string", pattern: "^caf\\u00e9\\u{1F600}?$" })
    assert.deepStrictEqual(accented("café"), [])
    assert.deepStrictEqual(accented("café😀"), [])
    assert.strictEqual(accented("cafe").length, 1)
    assert.deepStrictEqual(compiled({ type: "string", pattern: "^\\\\u0041$" })("\\u0041"), [], "an escaped backslash")
    for (const pattern of ["^(?=a)a$", "(?<!x)y", "^(a)\\1$"]) {
      const result = compileEventSchema({ type: "string", pattern })
      assert.strictEqual(result._tag, "Invalid", pattern)
      if (result._tag === "Invalid") {
        assert.include(result.message, JSON.stringify(pattern))
        assert.include(result.message, "linear time")
      }
    }
  })
})

describe("unmatchedPattern", () => {
  it("takes catalog names, prefixes matching one, and operational types; names the first other entry", () => {
    const names = ["invoice.paid", "order.created"]
    assert.isUndefined(unmatchedPattern(["invoice.paid", "order.*", "codex.*", "codex.test"], names))
    assert.strictEqual(unmatchedPattern(["order.*", "refund.*", "nope"], names), "refund.*")
    assert.strictEqual(unmatchedPattern(["order"], names), "order")
    assert.strictEqual(unmatchedPattern(["order.created.*"], names), "order.created.*")
  })
})
