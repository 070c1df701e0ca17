import type { JsonSchema } from "effect"
import { Schema } from "effect"

/**
 * Text PostgreSQL can store as sent: no NUL (text and jsonb refuse U+0000) and no unpaired UTF-16 surrogate (jsonb
 * refuses `\ud800`; text would silently store U+FFFD instead). Checked at the edge, so such input is a 400 naming the
 * field, not a database error.
 */
export const isStorableText = (s: string): boolean => !s.includes("\u0000") && s.isWellFormed()

export const storableTextMessage = "must not contain NUL characters or unpaired surrogates"

/**
 * JSON Schema for a check it cannot express: `{}` flagged as a looser approximation. Without it the generator drops
 * the check's annotations too, and `.annotate()` after a check lands on that check: the field would lose its
 * description and examples in /openapi.json.
 */
export const approximateJsonSchema = (fragment: JsonSchema.JsonSchema = {}) => ({
  toJsonSchema: (): [JsonSchema.JsonSchema, true] => [fragment, true]
})

export const isStorable = Schema.makeFilter(
  (s: string) => isStorableText(s) || storableTextMessage,
  approximateJsonSchema()
)

const encoder = new TextEncoder()

/** Length in UTF-8 bytes: what a PostgreSQL `octet_length` CHECK counts. */
export const utf8Length = (s: string): number => encoder.encode(s).length
