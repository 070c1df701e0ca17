/**
 * `ENCRYPTION_KEYS`: the AES-256 keys that seal secrets at rest (see services/SecretBox.ts). A comma-separated list of
 * `id:base64` entries, each key exactly 32 bytes after base64 decoding; the first key seals, every key opens, so a
 * new key can be put first while values sealed under the old one are still read (and re-sealed by the sweep).
 */

/** One key. `material` is the raw 32 bytes: keep it inside a `Redacted` (AppConfig) and never render it. */
export interface EncryptionKey {
  readonly id: string
  readonly material: Uint8Array
}

/** The configured keys, the sealing one first. */
export type EncryptionKeyList = readonly [EncryptionKey, ...ReadonlyArray<EncryptionKey>]

/** Key ids name the key inside every sealed value: short, and free of the `:` that separates the fields. */
export const keyIdPattern = /^[A-Za-z0-9_-]{1,32}$/

export const keyLengthBytes = 32

/** Standard or URL-safe base64, padding optional (`openssl rand -base64 32` prints 44 characters ending in `=`). */
const base64Pattern = /^[A-Za-z0-9+/_-]+={0,2}$/

/**
 * The development key: PUBLIC (it is in this file and in the README), used only when `ENCRYPTION_KEYS` is unset in
 * development, and refused outside development.
 */
export const developmentKeyId = "dev"
export const developmentKeyBase64 = "BFbrJ/pbroq5HLUZvmnbgbm9SCaS8WZ6QagkJhLe/Rs="

const decode = (base64: string): Uint8Array => new Uint8Array(Buffer.from(base64, "base64"))

export const developmentKey: EncryptionKey = { id: developmentKeyId, material: decode(developmentKeyBase64) }

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0

/** True when one of `keys` is the public development key (whatever id it was given). */
export const includesDevelopmentKey = (keys: ReadonlyArray<EncryptionKey>): boolean =>
  keys.some((key) => sameBytes(key.material, developmentKey.material))

/**
 * True when one of `keys` is a placeholder rather than a key: 32 copies of one byte (the examples' all-zero key, say),
 * which anyone can guess.
 */
export const includesPlaceholderKey = (keys: ReadonlyArray<EncryptionKey>): boolean =>
  keys.some((key) => key.material.every((byte) => byte === key.material[0]))

/**
 * Parses `ENCRYPTION_KEYS`; a string is the reason it is malformed. The reason never repeats key material (only entry
 * positions, and an id when it is duplicated: ids are not secret), so it can go into the one-line startup error.
 */
export const parseEncryptionKeys = (raw: string): EncryptionKeyList | string => {
  const entries = raw
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0)
  if (entries.length === 0) return "expected at least one key, as id:base64-of-32-bytes"
  const keys: Array<EncryptionKey> = []
  const ids = new Set<string>()
  for (const [index, entry] of entries.entries()) {
    const where = `entry ${index + 1}`
    const colon = entry.indexOf(":")
    if (colon === -1) return `${where} must be id:base64-of-32-bytes`
    const id = entry.slice(0, colon).trim()
    const base64 = entry.slice(colon + 1).trim()
    if (!keyIdPattern.test(id)) return `${where}: the key id must be 1 to 32 characters of A-Z a-z 0-9 _ -`
    if (ids.has(id)) return `${where}: duplicate key id "${id}"`
    if (!base64Pattern.test(base64)) return `${where} (id "${id}"): the key is not base64`
    const material = decode(base64)
    // Node's decoder skips what it cannot read: a value that does not re-encode to itself was not clean base64.
    const canonical = Buffer.from(material).toString(
      base64.includes("-") || base64.includes("_") ? "base64url" : "base64"
    )
    if (canonical.replace(/=+$/, "") !== base64.replace(/=+$/, "")) {
      return `${where} (id "${id}"): the key is not base64`
    }
    if (material.length !== keyLengthBytes) {
      return `${where} (id "${id}"): the key must be exactly ${keyLengthBytes} bytes after base64 decoding, not ${material.length} (generate one with: openssl rand -base64 32)`
    }
    ids.add(id)
    keys.push({ id, material })
  }
  const [first, ...rest] = keys
  return first === undefined ? "expected at least one key" : [first, ...rest]
}
