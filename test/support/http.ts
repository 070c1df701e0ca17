import { Effect, Option, Redacted } from "effect"
import { FetchHttpClient, HttpClient, HttpClientRequest } from "effect/http"
import { HttpApiClient } from "effect/http-api"
import { Api } from "../../src/api/Api.ts"
import { send, TestServer, type WireResponse } from "./testServer.ts"

/** How long a single request may take before the test calls it a hang. */
const requestTimeoutMs = 10_000

export interface RequestOptions {
  readonly method?: string
  /** Sent as `Authorization: Bearer <bearer>`. */
  readonly bearer?: string | undefined
  /** A value to send as JSON. */
  readonly json?: unknown
  /** A raw body, sent as is (with `contentType`, default application/json). */
  readonly raw?: string | Uint8Array
  readonly contentType?: string
  /** More headers (an `Idempotency-Key`, say). */
  readonly headers?: Readonly<Record<string, string>>
}

/**
 * A raw HTTP request to the test server (fetch, no client-side encoding), for tests of the wire format itself. It
 * fails the test (a defect) when no answer comes within 10 seconds.
 */
export const request = (path: string, options: RequestOptions = {}) => {
  const headers: Record<string, string> = { ...options.headers }
  if (options.bearer !== undefined) headers.authorization = `Bearer ${options.bearer}`
  let body: string | Uint8Array | undefined
  if (options.raw !== undefined) body = options.raw
  else if (options.json !== undefined) body = JSON.stringify(options.json)
  if (body !== undefined) headers["content-type"] = options.contentType ?? "application/json"
  const init: RequestInit = {
    method: options.method ?? (body === undefined ? "GET" : "POST"),
    headers,
    signal: AbortSignal.timeout(requestTimeoutMs)
  }
  if (body !== undefined) init.body = body
  return send(path, init)
}

/** @deprecated import from problems.ts; kept for outbox.test.ts, which another branch edits. */
export { expectProblem } from "./problems.ts"
export type { WireResponse }

export interface TenantCredentials {
  readonly tenantId: string
  readonly apiKey: string
}

/**
 * A new tenant and its first API key, through `POST /admin/tenants` (typed client). The admin API is open in
 * development when no ADMIN_TOKEN is configured; pass the token otherwise.
 */
export const createTenant = (name = "Test tenant", adminToken?: Redacted.Redacted<string> | string) =>
  Effect.gen(function* () {
    const token = adminToken === undefined || typeof adminToken === "string" ? adminToken : Redacted.value(adminToken)
    const api = yield* apiClient(Option.fromNullishOr(token))
    const created = yield* api.admin.createTenant({ payload: { name } }).pipe(Effect.orDie)
    return { tenantId: created.tenant.id, apiKey: created.apiKey.key } satisfies TenantCredentials
  })

/** The typed client derived from the contract, sending `apiKey` (if any) as the bearer token. */
export const apiClient = (apiKey: Option.Option<string> | string = Option.none()) =>
  Effect.gen(function* () {
    const { baseUrl } = yield* TestServer
    const key = typeof apiKey === "string" ? Option.some(apiKey) : apiKey
    return yield* HttpApiClient.make(Api, {
      baseUrl,
      transformClient: Option.match(key, {
        onNone: () => (client: HttpClient.HttpClient) => client,
        onSome: (k) => HttpClient.mapRequest(HttpClientRequest.bearerToken(k))
      })
    })
  }).pipe(Effect.provide(FetchHttpClient.layer))

export interface RawCall {
  readonly method?: string | undefined
  /** Sent as `Authorization: Bearer <bearer>`. */
  readonly bearer?: string | undefined
  /** A value to send as JSON. */
  readonly json?: unknown
  /** A raw JSON body, sent as is. */
  readonly raw?: string | undefined
  /** More headers, appended in order (a name may repeat). */
  readonly headers?: ReadonlyArray<readonly [string, string]>
}

/** A request to any server by base URL (another process, say), with a 20 s deadline; the answer read whole. */
export const callUrl = (baseUrl: string, path: string, options: RawCall = {}): Promise<WireResponse> => {
  const headers = new Headers()
  if (options.bearer !== undefined) headers.set("authorization", `Bearer ${options.bearer}`)
  for (const [name, value] of options.headers ?? []) headers.append(name, value)
  const body = options.raw ?? (options.json === undefined ? undefined : JSON.stringify(options.json))
  if (body !== undefined) headers.set("content-type", "application/json")
  const init: RequestInit = {
    method: options.method ?? (body === undefined ? "GET" : "POST"),
    headers,
    signal: AbortSignal.timeout(20_000)
  }
  if (body !== undefined) init.body = body
  return fetch(`${baseUrl}${path}`, init).then(async (r) => ({
    status: r.status,
    headers: r.headers,
    text: await r.text()
  }))
}
