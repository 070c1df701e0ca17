import { Arbitrary, Schema } from "effect"

/**
 * Generated JSON text for the fidelity tests: objects with members in any order (integer-like names included), numbers
 * in every spelling RFC 8259 allows (`-0`, `2.50`, `1.0E+2`, `1e400`, 30 digits), strings whose characters are written
 * raw or escaped (`é`, `\u00e9`, `\u00E9`, `\/`), nested arrays and objects, and whitespace of every kind between the
 * tokens. Each value comes as sent (`wire`) and as codex-api must keep it (`minified`), built independently of the code
 * under test. Strings never hold NUL or an unpaired surrogate (events refuse them), and member names are unique.
 */
export interface JsonSource {
  readonly wire: string
  readonly minified: string
}

const intBetween = (minimum: number, maximum: number) =>
  Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum, maximum })))

/** One of the given values (shrinks towards the first). */
const constantFrom = <A>(values: ReadonlyArray<A>): Arbitrary.Arbitrary<A> =>
  Arbitrary.map(intBetween(0, values.length - 1), (i) => values[i] as A)

/** One of the given arbitraries (shrinks towards the first). */
const oneOf = <A>(...choices: ReadonlyArray<Arbitrary.Arbitrary<A>>): Arbitrary.Arbitrary<A> =>
  Arbitrary.flatMap(intBetween(0, choices.length - 1), (i) => choices[i] as Arbitrary.Arbitrary<A>)

// -------------------------------------------------------------------------------------------------------------------
// Tokens

const digits = (min: number, max: number) =>
  Arbitrary.map(Arbitrary.array(intBetween(0, 9), { minLength: min, maxLength: max }), (ds) => ds.join(""))

/** `-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?`, with trailing zeros and long mantissas. */
const numberText: Arbitrary.Arbitrary<string> = Arbitrary.map(
  Arbitrary.all([
    constantFrom(["", "-"]),
    oneOf(
      Arbitrary.Constant("0"),
      Arbitrary.map(Arbitrary.all([intBetween(1, 9), digits(0, 30)]), ([first, rest]) => `${first}${rest}`)
    ),
    oneOf(
      Arbitrary.Constant(""),
      Arbitrary.map(digits(1, 8), (ds) => `.${ds}`)
    ),
    oneOf(
      Arbitrary.Constant(""),
      Arbitrary.map(
        Arbitrary.all([constantFrom(["e", "E"]), constantFrom(["", "+", "-"]), digits(1, 3)]),
        ([e, sign, ds]) => `${e}${sign}${ds}`
      )
    )
  ]),
  (parts) => parts.join("")
)

const hex4 = (unit: number, upper: boolean) => {
  const text = unit.toString(16).padStart(4, "0")
  return `\\u${upper ? text.toUpperCase() : text}`
}

const shortEscapes: Readonly<Record<string, string>> = {
  '"': '\\"',
  "\\": "\\\\",
  "/": "\\/",
  "\b": "\\b",
  "\f": "\\f",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t"
}

/** Every way JSON can write one character (a code point): raw when allowed, short escape, `\u` in either case. */
const spellings = (char: string): ReadonlyArray<string> => {
  const units = Array.from({ length: char.length }, (_, i) => char.charCodeAt(i))
  const out = [units.map((u) => hex4(u, false)).join(""), units.map((u) => hex4(u, true)).join("")]
  const short = shortEscapes[char]
  if (short !== undefined) out.unshift(short)
  const raw = char !== '"' && char !== "\\" && (units[0] ?? 0) >= 0x20
  if (raw) out.unshift(char)
  return out
}

const characters = ["a", "Z", "0", " ", ",", ":", "{", "]", "é", "😀", "\u2028", "\u007f", '"', "\\", "/", "\n", "\t"]
const characterSpellings = characters.map((char) => [char, spellings(char)] as const)

/** A string literal: its text as written, and the string it denotes. */
interface StringToken {
  readonly literal: string
  readonly value: string
}

const stringToken: Arbitrary.Arbitrary<StringToken> = Arbitrary.map(
  Arbitrary.array(
    Arbitrary.flatMap(intBetween(0, characterSpellings.length - 1), (i) => {
      const [char, ways] = characterSpellings[i] ?? ["a", ["a"]]
      return Arbitrary.map(intBetween(0, ways.length - 1), (w) => ({ char, written: ways[w] ?? char }))
    }),
    { maxLength: 6 }
  ),
  (pieces) => ({
    literal: `"${pieces.map((p) => p.written).join("")}"`,
    value: pieces.map((p) => p.char).join("")
  })
)

/** Names that a JavaScript object would reorder or treat specially, and generated ones. */
const nameToken: Arbitrary.Arbitrary<StringToken> = oneOf(
  stringToken,
  Arbitrary.map(constantFrom(["z", "a", "10", "2", "1", "0", "__proto__", "constructor", "toString"]), (name) => ({
    literal: `"${name}"`,
    value: name
  }))
)

// -------------------------------------------------------------------------------------------------------------------
// Trees

type Node =
  | { readonly _tag: "Token"; readonly text: string }
  | { readonly _tag: "Array"; readonly items: ReadonlyArray<Node> }
  | { readonly _tag: "Object"; readonly members: ReadonlyArray<readonly [name: StringToken, value: Node]> }

const token = (text: string): Node => ({ _tag: "Token", text })

const leaf: Arbitrary.Arbitrary<Node> = oneOf(
  Arbitrary.map(numberText, token),
  Arbitrary.map(stringToken, (s) => token(s.literal)),
  Arbitrary.map(constantFrom(["true", "false", "null"]), token)
)

const objectNode = (value: Arbitrary.Arbitrary<Node>): Arbitrary.Arbitrary<Node> =>
  Arbitrary.map(Arbitrary.array(Arbitrary.all([nameToken, value]), { maxLength: 6 }), (members): Node => {
    // Unique names (I-JSON): the first member of each name is kept.
    const byName = new Map<string, readonly [StringToken, Node]>()
    for (const member of members) if (!byName.has(member[0].value)) byName.set(member[0].value, member)
    return { _tag: "Object", members: [...byName.values()] }
  })

const node = (depth: number): Arbitrary.Arbitrary<Node> => {
  if (depth === 0) return leaf
  const inner = node(depth - 1)
  return oneOf(
    leaf,
    Arbitrary.map(Arbitrary.array(inner, { maxLength: 5 }), (items): Node => ({ _tag: "Array", items })),
    objectNode(inner)
  )
}

/** Renders the tree, taking the whitespace between tokens in turn from `gaps` (all empty: minified). */
const render = (root: Node, gaps: ReadonlyArray<string>): string => {
  let turn = 0
  const gap = () => gaps[turn++ % gaps.length] ?? ""
  const go = (n: Node): string => {
    switch (n._tag) {
      case "Token":
        return n.text
      case "Array":
        return `[${gap()}${n.items.map((item) => `${go(item)}${gap()}`).join(`,${gap()}`)}]`
      case "Object":
        return `{${gap()}${n.members
          .map(([name, value]) => `${name.literal}${gap()}:${gap()}${go(value)}${gap()}`)
          .join(`,${gap()}`)}}`
    }
  }
  return go(root)
}

const whitespace = Arbitrary.array(constantFrom(["", " ", "\n", "\t", "\r\n", "  ", " \t\n "]), {
  minLength: 1,
  maxLength: 12
})

/** A JSON object (an event's `data`), up to 4 levels deep, as sent and minified. */
export const jsonObjectSource: Arbitrary.Arbitrary<JsonSource> = Arbitrary.map(
  Arbitrary.all([objectNode(node(2)), whitespace]),
  ([root, gaps]) => ({ wire: render(root, gaps), minified: render(root, [""]) })
)
