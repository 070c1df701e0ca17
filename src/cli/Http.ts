import { Effect } from "effect"
import { type CodexClient, createCodexClient } from "../../packages/client/src/client.ts"
import type { CodexCredentials } from "../../packages/client/src/credentials.ts"
import { packageVersion } from "../domain/PackageInfo.ts"
import { type ApiError, apiErrorOf, Unreachable, UsageError } from "./Failure.ts"
import { type Connection, resolveConnection } from "./Profile.ts"

/** How long a request may wait for its answer before the command gives up (exit 3). */
const requestTimeoutMs = 30_000

/** An answer of the promise client: `data` on success, `error` (the problem) otherwise. */
interface Answer<D, E> {
  readonly data?: D
  readonly error?: E
  readonly response: Response
}

/** The server, through the client package (packages/client), as a command uses it. */
export interface Api {
  readonly url: string
  /** A request whose success has a body: the body and the response (for its headers). */
  readonly call: <D, E>(
    request: (client: CodexClient) => Promise<Answer<D, E>>
  ) => Effect.Effect<{ readonly data: D; readonly response: Response }, ApiError | Unreachable>
  /** A request whose success has no body (204). */
  readonly send: <D, E>(
    request: (client: CodexClient) => Promise<Answer<D, E>>
  ) => Effect.Effect<void, ApiError | Unreachable>
}

/** What a command acts as: the admin (`/admin` routes) or a tenant (`/v1`). */
export type Acting = "admin" | "tenant"

const missingTenantCredentials =
  "this command acts as a tenant: set CODEX_API_KEY (or --api-key), or --tenant ten_... with CODEX_ADMIN_TOKEN"

/** The credentials `acting` needs from the connection; with `--tenant`, the admin token acts as that tenant. */
const credentialsFor = (acting: Acting, connection: Connection): Effect.Effect<CodexCredentials, UsageError> => {
  const { apiKey, adminToken, tenant } = connection
  if (tenant !== undefined) {
    return adminToken === undefined
      ? Effect.fail(
          new UsageError({ message: "--tenant acts with the admin token: set CODEX_ADMIN_TOKEN or --admin-token" })
        )
      : Effect.succeed({ adminToken, tenant })
  }
  if (acting === "tenant" && apiKey === undefined)
    return Effect.fail(new UsageError({ message: missingTenantCredentials }))
  return Effect.succeed({ apiKey, adminToken })
}

/** Why no answer came: the system's code (ECONNREFUSED, ENOTFOUND...) when there is one. */
const reasonOf = (error: unknown): string => {
  if (error instanceof DOMException && error.name === "TimeoutError")
    return `no answer within ${requestTimeoutMs / 1000} s`
  const cause = error instanceof Error ? error.cause : undefined
  if (cause instanceof Error) return "code" in cause && typeof cause.code === "string" ? cause.code : cause.message
  return error instanceof Error ? error.message : String(error)
}

const timedFetch = (request: Request): Promise<Response> =>
  fetch(request, { signal: AbortSignal.any([request.signal, AbortSignal.timeout(requestTimeoutMs)]) })

/** The API as this command line's connection allows `acting`; a usage error when it lacks the credentials. */
export const connect = (acting: Acting) =>
  Effect.gen(function* () {
    const connection = yield* resolveConnection
    const credentials = yield* credentialsFor(acting, connection)
    const client = createCodexClient({
      ...credentials,
      baseUrl: connection.url,
      fetch: timedFetch,
      headers: { "User-Agent": `codex-cli/${packageVersion}` }
    })
    const attempt = <A>(promise: () => Promise<A>) =>
      Effect.tryPromise({
        try: promise,
        catch: (error) => new Unreachable({ url: connection.url, reason: reasonOf(error) })
      })
    const call: Api["call"] = (request) =>
      Effect.flatMap(
        attempt(() => request(client)),
        (answer) =>
          answer.response.ok
            ? Effect.succeed({ data: answer.data as never, response: answer.response })
            : Effect.fail(apiErrorOf(answer.response, answer.error))
      )
    return {
      url: connection.url,
      call,
      send: (request) => Effect.asVoid(call(request))
    } satisfies Api
  })
