import { HttpApi, HttpApiMiddleware, OpenApi } from "effect/http-api"
import { SystemApi } from "./SystemApi.ts"

/**
 * The whole codex-api contract. Handlers implement it (src/http), the OpenAPI document and the typed client are
 * derived from it. `ProblemDetails` makes request decoding failures RFC 9457 problems with the failing paths.
 */
export class Api extends HttpApi.make("codex-api")
  .add(SystemApi)
  .middleware(HttpApiMiddleware.ProblemDetails)
  .annotateMerge(
    OpenApi.annotations({
      title: "codex-api",
      description:
        "Multi-tenant event and webhook delivery API. Every error is an RFC 9457 `application/problem+json` document."
    })
  ) {}
