import { createHmac, createSecretKey, type KeyObject } from "node:crypto"

/**
 * Standard Webhooks 1.0 signing (standardwebhooks.com). The signed content is `${id}.${timestamp}.${body}` where `id`
 * is the `webhook-id` header (our event id, stable across retries), `timestamp` the `webhook-timestamp` header
 * (integer Unix seconds) and `body` the exact bytes sent. The HMAC-SHA256 key is the base64-decoded part of the
 * `whsec_...` secret; each signature is `v1,<base64 HMAC>`, and `webhook-signature` lists them separated by spaces
 * (two during a secret rotation, so a receiver holding either secret verifies the message).
 */

const secretPrefix = "whsec_"

/** The HMAC key of a `whsec_` secret (a secret without the prefix is read as plain base64, as the libraries do). */
export const signingKey = (secret: string): Buffer =>
  Buffer.from(secret.startsWith(secretPrefix) ? secret.slice(secretPrefix.length) : secret, "base64")

/**
 * A secret's HMAC key as a KeyObject, for signing many messages: HMAC with a Buffer key checks and copies the key at
 * every message, with a KeyObject once.
 */
export const signingKeyObject = (secret: string): KeyObject => createSecretKey(signingKey(secret))

/** A secret (`whsec_...`) or its key (`signingKeyObject`). */
export type SigningSecret = string | KeyObject

/** One `v1,<base64>` signature of a message. */
export const signV1 = (secret: SigningSecret, id: string, timestampSeconds: number, body: string): string =>
  `v1,${createHmac("sha256", typeof secret === "string" ? signingKey(secret) : secret)
    .update(`${id}.${timestampSeconds}.${body}`)
    .digest("base64")}`

export interface WebhookHeaders {
  readonly "webhook-id": string
  readonly "webhook-timestamp": string
  readonly "webhook-signature": string
}

/**
 * The three Standard Webhooks headers of one message, signed with every given secret (the current one first, then
 * the previous one while its rotation overlap lasts). At least one secret is required.
 */
export const webhookHeaders = (
  secrets: readonly [SigningSecret, ...ReadonlyArray<SigningSecret>],
  id: string,
  timestampSeconds: number,
  body: string
): WebhookHeaders => ({
  "webhook-id": id,
  "webhook-timestamp": String(Math.floor(timestampSeconds)),
  "webhook-signature": secrets.map((secret) => signV1(secret, id, Math.floor(timestampSeconds), body)).join(" ")
})
