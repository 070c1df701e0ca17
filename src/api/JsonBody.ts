import { Context, type Option } from "effect"
import { HttpApiError, HttpApiMiddleware } from "effect/http-api"
import type { JsonText } from "../domain/JsonText.ts"

/** The request's JSON body as the client wrote it (see JsonText): what `JSON.parse` would lose. */
export class RequestJson extends Context.Service<
  RequestJson,
  {
    /** The source text of a top-level member of the body, minified; None without that member (or a JSON body). */
    readonly member: (name: string) => Option.Option<JsonText>
  }
>()("codex/RequestJson") {}

/**
 * JSON request bodies are I-JSON (RFC 7493): a body with a duplicate member name at any level is a 400 problem whose
 * `errors[0].path` leads to it (`["payload", "data", "a"]`), the shape of every other decoding failure; `JSON.parse`
 * would silently keep the last one. Applied by every served group inside its authentication, so it runs after the
 * credentials are checked and before the endpoint's own middleware (an Idempotency-Key is not claimed for such a
 * body) and the payload's decoding. It provides the body's source text (RequestJson).
 */
export class JsonBody extends HttpApiMiddleware.Service<JsonBody, { provides: RequestJson }>()("codex/JsonBody", {
  error: HttpApiError.BadRequestProblem
}) {}

/** The message of a duplicate member name in a 400 problem's `errors`. */
export const duplicateMemberMessage = "Duplicate member name: a name may appear once per object (I-JSON, RFC 7493)"
