import { RE2JS } from "re2js"

/**
 * The regular-expression engine for tenants' JSON Schemas (`pattern`, `patternProperties`): RE2's, through re2js (a
 * pure-JavaScript port, no native build), whose matching time is linear in the input. V8's own engine backtracks, so
 * one tenant's `"pattern": "^(a+)+$"` would hold the API process's only thread for minutes on a 30-character string
 * (catastrophic backtracking, ReDoS); RE2 has no backtracking, at the price of lookaround and backreferences, which a
 * schema then cannot use: compiling it fails, and saving it is a 422 naming the pattern.
 */

/** What Ajv calls a pattern (its `RegExpLike`); `toString` is the key Ajv caches compiled patterns under. */
export interface LinearPattern {
  readonly test: (input: string) => boolean
  readonly toString: () => string
}

const hex = /^[0-9a-fA-F]{4}$/

/**
 * ECMAScript's `\uXXXX` and `\u{X...}` escapes written as RE2's `\x{...}` (the only syntax a JSON Schema pattern
 * commonly uses that RE2 spells differently); every other escape is copied as it is.
 */
const toRe2Syntax = (pattern: string): string => {
  let out = ""
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i]
    if (char !== "\\" || i + 1 >= pattern.length) {
      out += char
      continue
    }
    const next = pattern[i + 1]
    if (next === "u" && hex.test(pattern.slice(i + 2, i + 6))) {
      out += `\\x{${pattern.slice(i + 2, i + 6)}}`
      i += 5
    } else if (next === "u" && pattern[i + 2] === "{") {
      const end = pattern.indexOf("}", i + 3)
      if (end === -1) {
        out += "\\u"
        i += 1
      } else {
        out += `\\x{${pattern.slice(i + 3, end)}}`
        i = end
      }
    } else {
      out += `\\${next}`
      i += 1
    }
  }
  return out
}

/**
 * Compiles `source` for Ajv (the flags are ignored: RE2 matches code points, as `u` asks). Throws RE2's syntax error
 * on a pattern it cannot run, as `new RegExp` would on an invalid one: Ajv reports it while compiling the schema.
 */
const compile = (source: string, _flags: string): LinearPattern => {
  let compiled: RE2JS
  try {
    compiled = RE2JS.compile(toRe2Syntax(source))
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    throw new Error(
      `pattern ${JSON.stringify(source)} cannot be used: ${reason} (patterns run on RE2, in linear time: ` +
        "lookahead, lookbehind and backreferences are not supported)"
    )
  }
  return { test: (input) => compiled.matcher(input).find(), toString: () => source }
}

/** Ajv's `code.regExp` option. `code` names it in generated standalone code, which codex-api never emits. */
export const linearRegExp: ((source: string, flags: string) => LinearPattern) & { readonly code: string } =
  Object.assign(compile, { code: "linearRegExp" })
