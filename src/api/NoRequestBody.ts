import { HttpApiMiddleware } from "effect/http-api"
import { BadRequest } from "./Problems.ts"

/**
 * On a POST that takes no body (issue an API key, rotate a secret, retry a delivery): an empty body or `{}` is fine,
 * anything else is a 400 naming what was sent — a member meant for another request (`{"name": ...}` on key creation)
 * must not be silently ignored, as no member of a declared body is.
 */
export class NoRequestBody extends HttpApiMiddleware.Service<NoRequestBody>()("codex/NoRequestBody", {
  error: BadRequest
}) {}
