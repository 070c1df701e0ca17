import { HttpApiMiddleware } from "effect/http-api"
import { ServiceUnavailable } from "./Problems.ts"

/**
 * Every served route reads or writes the database. While it cannot be reached (down, restarting, shutting down) the
 * answer is 503 with `Retry-After`, not a 500: declared here so that the OpenAPI document lists it on every operation.
 * Repositories turn database failures into defects (layers/SqlFailures.ts); this middleware recognises the ones that
 * mean "unreachable".
 */
export class DatabaseAvailability extends HttpApiMiddleware.Service<DatabaseAvailability>()(
  "codex/DatabaseAvailability",
  { error: ServiceUnavailable }
) {}
