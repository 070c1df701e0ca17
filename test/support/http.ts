import { assert } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import { FetchHttpClient, HttpClient, HttpClientRequest } from "effect/http"
import { HttpApiClient } from "effect/http-api"
import { Api } from "../../src/api/Api.ts"
import type { TenantRateLimit } from "../../src/domain/Tenant.ts"
import { TestServer } from "./testServer.ts"

/** An answer read whole. */
export interface WireResponse {
  readonly status: number
  readonly headers: Headers
  readonly text: string
}

export interface RequestOptions {
  /** Default GET, or POST when there is a body. */
  readonly method?: string | undefined
  /** Sent as `Authorization: Bearer <bearer>`. */
  readonly bearer?: string | undefined
  /** Sent as the `Idempotency-Key` header, exactly as given. */
  readonly idempotencyKey?: string | undefined
  /** A value to send as JSON. */
  readonly json?: unknown
  /** A raw body, sent as is (with `contentType`); a stream goes out chunked. */
  readonly raw?: string | Uint8Array | ReadableStream<Uint8Array> | undefined
  /** The Content-Type of a body; default application/json. */
  readonly contentType?: string
  /** More headers: a record, or pairs appended in order (a name may repeat). */
  readonly headers?: Readonly<Record<string, string>> | ReadonlyArray<readonly [string, string]>
  /** How long the answer may take before the test calls it a hang. */
  readonly timeoutMs?: number
}

/**
 * A raw HTTP request to any server by base URL (another process, say), fetch with no client-side encoding, for tests
 * of the wire format itself; the answer read whole. Rejects when none comes within `timeoutMs` (default 20 s).
 */
export const callUrl = async (baseUrl: string, path: string, options: RequestOptions = {}): Promise<WireResponse> => {
  const headers = new Headers()
  if (options.idempotencyKey !== undefined) headers.set("idempotency-key", options.idempotencyKey)
  for (const [name, value] of Array.isArray(options.headers) ? options.headers : Object.entries(options.headers ?? {}))
    headers.append(name, value)
  if (options.bearer !== undefined) headers.set("authorization", `Bearer ${options.bearer}`)
  const body = options.raw ?? (options.json === undefined ? undefined : JSON.stringify(options.json))
  if (body !== undefined) headers.set("content-type", options.contentType ?? "application/json")
  const init: RequestInit & { duplex?: "half" } = {
    method: options.method ?? (body === undefined ? "GET" : "POST"),
    headers,
    signal: AbortSignal.timeout(options.timeoutMs ?? 20_000)
  }
  if (body !== undefined) init.body = body
  // fetch sends a stream only half-duplex (and then chunked).
  if (body instanceof ReadableStream) init.duplex = "half"
  const response = await fetch(`${baseUrl}${path}`, init)
  return { status: response.status, headers: response.headers, text: await response.text() }
}

/** `callUrl` as an Effect; no answer within the deadline fails the test (a defect). */
export const requestAt = (baseUrl: string, path: string, options: RequestOptions = {}): Effect.Effect<WireResponse> =>
  Effect.promise(() => callUrl(baseUrl, path, options))

/** A raw request to the test server (`requestAt`), with a 10 s deadline unless `timeoutMs` says otherwise. */
export const request = (path: string, options: RequestOptions = {}): Effect.Effect<WireResponse, never, TestServer> =>
  Effect.flatMap(TestServer, ({ baseUrl }) => requestAt(baseUrl, path, { timeoutMs: 10_000, ...options }))

/** Whether the answer is a stored one, replayed for a repeated `Idempotency-Key`. */
export const isReplay = (response: WireResponse): boolean => response.headers.get("idempotent-replayed") === "true"

export interface TenantOptions {
  /** The admin API is open in development when no ADMIN_TOKEN is configured; pass the token otherwise. */
  readonly adminToken?: Redacted.Redacted<string> | string | undefined
  /** The tenant's own quota (`null`: the server's default), asserted to be stored as given. */
  readonly rateLimit?: TenantRateLimit | null
}

/**
 * A new tenant and its first API key, through the test server's `POST /admin/tenants` (typed client): its id and
 * key, and `created`, the whole answer (the key's id and prefix, the tenant's fields).
 */
export const createTenant = (name = "Test tenant", options: TenantOptions = {}) =>
  Effect.flatMap(TestServer, ({ baseUrl }) => createTenantAt(baseUrl, name, options))

/** `createTenant` on the server at `baseUrl` (a process, a second test server). */
export const createTenantAt = (baseUrl: string, name: string, options: TenantOptions = {}) =>
  Effect.gen(function* () {
    const { adminToken } = options
    const token = adminToken === undefined || typeof adminToken === "string" ? adminToken : Redacted.value(adminToken)
    const api = yield* apiClientAt(baseUrl, Option.fromNullishOr(token))
    const payload = options.rateLimit === undefined ? { name } : { name, rateLimit: options.rateLimit }
    const created = yield* api.admin.createTenant({ payload }).pipe(Effect.orDie)
    if (options.rateLimit !== undefined) assert.deepStrictEqual(created.tenant.rateLimit, options.rateLimit)
    return { tenantId: created.tenant.id, apiKey: created.apiKey.key, created }
  })

/** The typed client derived from the contract, for the test server, sending `apiKey` (if any) as the bearer token. */
export const apiClient = (apiKey: Option.Option<string> | string = Option.none()) =>
  Effect.gen(function* () {
    const { baseUrl } = yield* TestServer
    return yield* apiClientAt(baseUrl, apiKey)
  })

/** The typed client for the server at `baseUrl`. */
export const apiClientAt = (baseUrl: string, apiKey: Option.Option<string> | string = Option.none()) => {
  const key = typeof apiKey === "string" ? Option.some(apiKey) : apiKey
  return HttpApiClient.make(Api, {
    baseUrl,
    transformClient: Option.match(key, {
      onNone: () => (client: HttpClient.HttpClient) => client,
      onSome: (k) => HttpClient.mapRequest(HttpClientRequest.bearerToken(k))
    })
  }).pipe(Effect.provide(FetchHttpClient.layer))
}
