import { HttpApi, HttpApiMiddleware, OpenApi } from "effect/http-api"
import { packageVersion } from "../domain/PackageInfo.ts"
import { AdminApi } from "./AdminApi.ts"
import { ApiKeysApi } from "./ApiKeysApi.ts"
import { DatabaseAvailability } from "./DatabaseAvailability.ts"
import { DeliveriesApi } from "./DeliveriesApi.ts"
import { EndpointsApi } from "./EndpointsApi.ts"
import { EventsApi } from "./EventsApi.ts"
import { EventTypesApi } from "./EventTypesApi.ts"
import { idempotencyDescription } from "./Idempotency.ts"
import { AdminPortalSessionsApi, PortalSessionsApi } from "./PortalSessionsApi.ts"
import { SystemApi } from "./SystemApi.ts"

/**
 * The groups HttpApiBuilder serves (src/http/Routes.ts): every group but the probes, which are plain router routes
 * (src/http/SystemHttp.ts). `ProblemDetails` makes request decoding failures RFC 9457 problems with the failing paths.
 * Request bodies are strict: a member no schema declares is a 400 naming it, never silently ignored (a typo such as
 * `eventType` for `eventTypes` would otherwise mean "every event").
 */
export class ServedApi extends HttpApi.make("codex-api")
  .add(AdminApi)
  .add(EndpointsApi)
  .add(EventsApi)
  .add(DeliveriesApi)
  .add(ApiKeysApi)
  .add(EventTypesApi)
  .add(PortalSessionsApi)
  .add(AdminPortalSessionsApi)
  .middleware(HttpApiMiddleware.ProblemDetails)
  .middleware(DatabaseAvailability)
  .annotate(HttpApi.PayloadParseOptions, { onExcessProperty: "error" }) {}

/**
 * The whole codex-api contract: the probes and the served groups. The OpenAPI document, the docs and the typed client
 * are derived from it.
 */
export class Api extends HttpApi.make("codex-api")
  .add(SystemApi)
  .addHttpApi(ServedApi)
  .annotateMerge(
    OpenApi.annotations({
      title: "codex-api",
      // The version /healthz reports: the document describes the API this build serves.
      version: packageVersion,
      description:
        "Multi-tenant event and webhook delivery API. Every error is an RFC 9457 `application/problem+json` " +
        "document. Tenants authenticate with `Authorization: Bearer ck_...` (or a portal session's `cps_...` token, " +
        "see Portal sessions); the admin API with the ADMIN_TOKEN.\n\n" +
        idempotencyDescription +
        "\n\nRate limits (draft-ietf-httpapi-ratelimit-headers): `/v1` requests count against the tenant's quota " +
        "(default 100 per 15 minutes, or the tenant's own), everything else against the client IP's. Responses " +
        'carry `RateLimit-Policy: "tenant";q=100;w=900` and `RateLimit: "tenant";r=42;t=513`; over the quota the ' +
        "answer is 429 with `Retry-After`."
    })
  ) {}
