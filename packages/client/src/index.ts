/**
 * `@codex-api/client`: the promise client (openapi-fetch over the types generated from /openapi.json) and webhook
 * verification for receivers. The Effect client is `@codex-api/client/effect`.
 */
export { type CodexClient, type CodexClientOptions, createCodexClient } from "./client.ts"
export { type CodexCredentials, tenantHeader } from "./credentials.ts"
export type { components, operations, paths } from "./generated/openapi.ts"
export {
  type VerifyWebhookOptions,
  verifyWebhook,
  type WebhookHeaders,
  type WebhookMessage,
  type WebhookVerification
} from "./webhooks.ts"

import type { components } from "./generated/openapi.ts"

/** The resources, by their schema names in /openapi.json. */
export type Schemas = components["schemas"]
