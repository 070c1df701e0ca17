import { HttpApi, HttpApiMiddleware, OpenApi } from "effect/http-api"
import { AdminApi } from "./AdminApi.ts"
import { DeliveriesApi } from "./DeliveriesApi.ts"
import { EndpointsApi } from "./EndpointsApi.ts"
import { EventsApi } from "./EventsApi.ts"
import { idempotencyDescription } from "./Idempotency.ts"
import { SystemApi } from "./SystemApi.ts"

/**
 * The whole codex-api contract. Handlers implement it (src/http), the OpenAPI document and the typed client are
 * derived from it. `ProblemDetails` makes request decoding failures RFC 9457 problems with the failing paths: on every
 * group that decodes input. The probes decode nothing, so they go without any middleware, which lets their handlers
 * run without a per-request copy of the application's context (see SystemHttp).
 */
export class Api extends HttpApi.make("codex-api")
  .add(SystemApi)
  .add(AdminApi.middleware(HttpApiMiddleware.ProblemDetails))
  .add(EndpointsApi.middleware(HttpApiMiddleware.ProblemDetails))
  .add(EventsApi.middleware(HttpApiMiddleware.ProblemDetails))
  .add(DeliveriesApi.middleware(HttpApiMiddleware.ProblemDetails))
  .annotateMerge(
    OpenApi.annotations({
      title: "codex-api",
      description:
        "Multi-tenant event and webhook delivery API. Every error is an RFC 9457 `application/problem+json` " +
        "document. Tenants authenticate with `Authorization: Bearer ck_...`; the admin API with the ADMIN_TOKEN.\n\n" +
        idempotencyDescription +
        "\n\nRate limits (draft-ietf-httpapi-ratelimit-headers): `/v1` requests count against the tenant's quota " +
        "(default 100 per 15 minutes, or the tenant's own), everything else against the client IP's. Responses " +
        'carry `RateLimit-Policy: "tenant";q=100;w=900` and `RateLimit: "tenant";r=42;t=513`; over the quota the ' +
        "answer is 429 with `Retry-After`."
    })
  ) {}
