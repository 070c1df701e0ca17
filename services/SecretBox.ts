import { Context, type Effect, Schema } from "effect"

/**
 * A sealed value could not be opened. `reason`: `UnknownKey` (sealed under a key id that `ENCRYPTION_KEYS` does not
 * list), `Forged` (authentication failed: wrong place, tampered with, or a different key under the same id),
 * `Malformed` (starts like a sealed value but is not one), `NotSealed` (neither sealed nor a legacy plaintext this
 * place accepts). Carries where the value lives and the key id, never the value.
 */
export class SecretUnreadable extends Schema.TaggedError<SecretUnreadable>()("SecretUnreadable", {
  reason: Schema.Literals(["UnknownKey", "Forged", "Malformed", "NotSealed"]),
  /** The `SecretContext.aad` of the value: where it lives (`endpoints.secret:ep_...`). */
  context: Schema.String,
  keyId: Schema.NullOr(Schema.String)
}) {
  override get message(): string {
    const key = this.keyId === null ? "" : ` (key id "${this.keyId}")`
    const what = {
      UnknownKey: "sealed under a key ENCRYPTION_KEYS does not list",
      Forged: "the sealed value does not authenticate",
      Malformed: "not a well-formed sealed value",
      NotSealed: "neither sealed nor an accepted plaintext"
    }[this.reason]
    return `${this.context}: ${what}${key}`
  }
}

/**
 * Where a sealed value lives. `aad` is authenticated with the ciphertext, so a value copied to another row (another
 * endpoint, another idempotency key) does not open there. `legacyPlaintext` says which unsealed values this place
 * still accepts on read: what a replica of the previous version wrote (during a rolling upgrade, and before the
 * re-encryption sweep has run).
 */
export interface SecretContext {
  readonly aad: string
  readonly legacyPlaintext: (stored: string) => boolean
}

/** The version tag every sealed value starts with: `enc1:<key id>:<iv>:<ciphertext and tag>`. */
export const sealedPrefix = "enc1:"

export const SecretContext = {
  /**
   * An endpoint's signing secret, current or previous: both columns share the endpoint's context, so a rotation can
   * move the sealed current secret into `previous_secret` in one statement without opening it.
   */
  endpointSecret: (endpointId: string): SecretContext => ({
    aad: `endpoints.secret:${endpointId}`,
    legacyPlaintext: (stored) => stored.startsWith("whsec_")
  }),
  /** An endpoint's custom headers (their values may be credentials), always sealed: they came after sealing did. */
  endpointHeaders: (endpointId: string): SecretContext => ({
    aad: `endpoints.headers:${endpointId}`,
    legacyPlaintext: () => false
  }),
  /**
   * A stored idempotent response, bound to its key and to the request it answers (the key last: it may contain `:`).
   * Any body not in the sealed format is a legacy plaintext (response bodies are JSON or empty, never `enc1:...`).
   */
  idempotencyResponse: (scope: string, fingerprint: string, key: string): SecretContext => ({
    aad: `idempotency_keys.response_body:${scope}:${fingerprint}:${key}`,
    legacyPlaintext: () => true
  })
} as const

/**
 * Secrets at rest: AES-256-GCM under `ENCRYPTION_KEYS` (layers/SecretBoxLive.ts). `seal` always uses the first key;
 * `open` accepts every configured key and the legacy plaintext its context allows.
 */
export interface SecretBoxShape {
  readonly seal: (plaintext: string, context: SecretContext) => Effect.Effect<string>
  readonly open: (stored: string, context: SecretContext) => Effect.Effect<string, SecretUnreadable>
  /** `enc1:<first key id>:`: a stored value starting with it is sealed under the current key (SQL: `starts_with`). */
  readonly currentPrefix: string
  /** The key ids `open` knows, the sealing one first (not secret: they are in every sealed value). */
  readonly keyIds: ReadonlyArray<string>
  /** The sealing key is the public development key: what it seals is protected from nobody. */
  readonly sealsWithDevelopmentKey: boolean
}

export class SecretBox extends Context.Service<SecretBox, SecretBoxShape>()("codex/SecretBox") {}
