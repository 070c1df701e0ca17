import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Schema } from "effect"
import { type JsonScan, minifyJson, scanJson } from "../src/domain/JsonText.ts"
import { jsonObjectSource } from "./support/jsonText.ts"

/** What `JSON.parse` says of the text: "valid" or "invalid". */
const parses = (text: string): "valid" | "invalid" => {
  try {
    JSON.parse(text)
    return "valid"
  } catch {
    return "invalid"
  }
}

/** The scan's verdict in the same terms: a duplicate name is valid JSON that I-JSON refuses. */
const verdict = (scan: JsonScan): "valid" | "invalid" => (scan._tag === "Invalid" ? "invalid" : "valid")

const members = (text: string): ReadonlyArray<readonly [string, string]> => {
  const scan = scanJson(text)
  if (scan._tag !== "Valid") return assert.fail(`${JSON.stringify(text)}: ${scan._tag}`)
  return [...scan.members].map(([name, span]) => [name, text.slice(span.start, span.end)] as const)
}

describe("scanJson", () => {
  it("finds each top-level member's value as written", () => {
    assert.deepStrictEqual(members('{"z":1,"a":2.50,"big":12345678901234567890123}'), [
      ["z", "1"],
      ["a", "2.50"],
      ["big", "12345678901234567890123"]
    ])
    assert.deepStrictEqual(members(' { "type" : "a" ,\n"data":{ "x" : [ 1 ] } , "\\u0061b" : null }\n'), [
      ["type", '"a"'],
      ["data", '{ "x" : [ 1 ] }'],
      ["ab", "null"]
    ])
    assert.deepStrictEqual(members("[1,{}]"), [])
    assert.deepStrictEqual(members('"text"'), [])
  })

  it.each([
    ['{"a":1,"a":2}', ["a"]],
    ['{"type":"x","data":{"a":{"k":1,"k":1}}}', ["data", "a", "k"]],
    ['{"l":[0,{"k":1},{"k":1,"j":2,"k":3}]}', ["l", 2, "k"]],
    [String.raw`{"é":1,"\u00e9":2}`, ["é"]],
    [String.raw`{"\u00E9":1,"\u00e9":2}`, ["é"]],
    [String.raw`{"a\/b":1,"a/b":2}`, ["a/b"]],
    [String.raw`{"😀":1,"\ud83d\ude00":2}`, ["😀"]],
    ['[{"":1,"":2}]', [0, ""]]
  ] as const)("%s: a duplicate name at %j", (text, path) => {
    assert.deepStrictEqual(scanJson(text), { _tag: "DuplicateName", path })
  })

  it("names are compared as strings: case, whitespace and other objects make them distinct", () => {
    assert.strictEqual(scanJson('{"a":1,"A":2,"a ":3,"o":{"a":1},"p":{"a":1},"q":[{"a":1},{"a":2}]}')._tag, "Valid")
  })

  it.each([
    "",
    " ",
    "{",
    "}",
    "[1,]",
    '{"a":1,}',
    '{"a" 1}',
    '{"a":}',
    "{a:1}",
    "{'a':1}",
    '{"a":01}',
    '{"a":1.}',
    '{"a":.5}',
    '{"a":+1}',
    '{"a":1e}',
    '{"a":-}',
    '{"a":0x10}',
    '{"a":NaN}',
    '{"a":Infinity}',
    '{"a":tru}',
    '{"a":"\t"}',
    String.raw`{"a":"\x"}`,
    String.raw`{"a":"\u12"}`,
    String.raw`{"a":"\u12G4"}`,
    '{"a":1}x',
    '{"a":1} {"b":2}',
    '"unterminated',
    "\ufeff{}",
    "{}\u00a0"
  ])("%j is not JSON, as for JSON.parse", (text) => {
    assert.strictEqual(parses(text), "invalid")
    assert.deepStrictEqual(scanJson(text), { _tag: "Invalid" })
  })

  it("any depth: 100,000 nested arrays are scanned without recursion", () => {
    const deep = `{"a":${"[".repeat(100_000)}${"]".repeat(100_000)}}`
    assert.strictEqual(scanJson(deep)._tag, "Valid")
    assert.strictEqual(scanJson(deep.slice(0, -2))._tag, "Invalid")
  })

  it.prop(
    "generated JSON text (any member order, number spelling, escapes, whitespace): valid, members as written",
    [jsonObjectSource],
    ([source]) => {
      const scan = scanJson(source.wire)
      assert.strictEqual(scan._tag, "Valid", source.wire)
      assert.deepStrictEqual(JSON.parse(source.wire), JSON.parse(source.minified))
    },
    { arbitrary: { runs: 500 } }
  )

  it.prop(
    "agrees with JSON.parse on generated text with one character deleted, inserted or replaced",
    [
      jsonObjectSource,
      Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 10_000 }))),
      Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 2 }))),
      Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 14 })))
    ],
    ([source, at, kind, pick]) => {
      const text = source.wire
      const i = at % (text.length + 1)
      const char = '{}[],:"\\ 0-.eEa'[pick] ?? " "
      const mutated =
        kind === 0
          ? text.slice(0, i) + text.slice(i + 1)
          : kind === 1
            ? text.slice(0, i) + char + text.slice(i)
            : text.slice(0, i) + char + text.slice(i + 1)
      assert.strictEqual(verdict(scanJson(mutated)), parses(mutated), mutated)
    },
    { arbitrary: { runs: 2000 } }
  )
})

describe("minifyJson", () => {
  it("drops the whitespace between tokens and keeps every other character", () => {
    assert.strictEqual(
      minifyJson(' {\n\t"a b" : [ 1 , 2.50 , "x \\" y" ] ,\r\n "\\u00e9" : { } }\n'),
      '{"a b":[1,2.50,"x \\" y"],"\\u00e9":{}}'
    )
    assert.strictEqual(minifyJson('{"a":"\\\\"  ,  "b" : 1}'), '{"a":"\\\\","b":1}')
  })

  it("minifies a slice of the text", () => {
    const text = '{"type":"a","data": { "x" : [ 1 , 2 ] } }'
    const [, data] = members(text)
    assert.strictEqual(data?.[1], '{ "x" : [ 1 , 2 ] }')
    const start = text.indexOf("{ ")
    assert.strictEqual(minifyJson(text, start, start + '{ "x" : [ 1 , 2 ] }'.length), '{"x":[1,2]}')
  })

  it.prop(
    "generated JSON text minifies to the text without its whitespace",
    [jsonObjectSource],
    ([source]) => {
      assert.strictEqual(minifyJson(source.wire), source.minified)
      const scan = scanJson(`{"data":${source.wire}}`)
      if (scan._tag !== "Valid") return assert.fail(scan._tag)
      const span = scan.members.get("data")
      assert.strictEqual(span && minifyJson(`{"data":${source.wire}}`, span.start, span.end), source.minified)
    },
    { arbitrary: { runs: 500 } }
  )

  it.prop(
    "JSON.stringify with indentation minifies to JSON.stringify without",
    [Arbitrary.schema(Schema.Json)],
    ([value]) => {
      assert.strictEqual(minifyJson(JSON.stringify(value, null, 2)), JSON.stringify(value))
    },
    { arbitrary: { runs: 300 } }
  )
})
