import createClient, { type Client } from "openapi-fetch"
import { type CodexCredentials, credentialHeaders } from "./credentials.ts"
import type { paths } from "./generated/openapi.ts"

export type CodexClientOptions = CodexCredentials & {
  /** The server, e.g. `https://codex.example.com` (a path prefix is kept: `https://example.com/codex`). */
  readonly baseUrl: string
  /** Another fetch (a proxy agent, a test double); default `globalThis.fetch`. */
  readonly fetch?: ((input: Request) => Promise<Response>) | undefined
  /** Headers sent with every request (a `User-Agent`, say). */
  readonly headers?: Readonly<Record<string, string>> | undefined
}

/**
 * A promise client of every route, typed from /openapi.json (openapi-fetch): `client.GET("/v1/endpoints/{id}",
 * { params: { path: { id } } })` resolves to `{ data }` on success or `{ error }` (the RFC 9457 problem) otherwise,
 * with the `response` either way; it rejects only when no response came (the server is unreachable).
 */
export type CodexClient = Client<paths>

export const createCodexClient = (options: CodexClientOptions): CodexClient => {
  const client = createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
    ...(options.headers === undefined ? {} : { headers: { ...options.headers } })
  })
  client.use({
    onRequest: ({ request, schemaPath }) => {
      // A credential given for one call (`headers: { Authorization }`) wins over the client's.
      for (const [name, value] of Object.entries(credentialHeaders(schemaPath, options))) {
        if (!request.headers.has(name)) request.headers.set(name, value)
      }
      return request
    }
  })
  return client
}
