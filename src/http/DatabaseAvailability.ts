import { Cause, Effect, Layer } from "effect"
import { HttpServerRespondable, HttpServerResponse } from "effect/http"
import { SqlError } from "effect/sql"
import { DatabaseAvailability } from "../api/DatabaseAvailability.ts"
import { ServiceUnavailable } from "../api/Problems.ts"

/** The SQLSTATE PostgreSQL sent with an error the driver could not classify, if any. */
const sqlStateOf = (cause: unknown): string | undefined =>
  typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string"
    ? cause.code
    : undefined

/**
 * A database that cannot be reached (down, restarting, pool exhausted by a dead server): a 503, not a bug. Besides
 * connection and authentication failures, that is SQLSTATE class 57P — "the database system is shutting down"
 * (57P01), crashed (57P02), "is starting up" (57P03) — which the driver reports as an unknown error.
 */
export const isDatabaseUnavailable = (defect: unknown): boolean =>
  SqlError.isSqlError(defect) &&
  (defect.reason._tag === "ConnectionError" ||
    defect.reason._tag === "AuthenticationError" ||
    (defect.reason._tag === "UnknownError" && (sqlStateOf(defect.reason.cause)?.startsWith("57P") ?? false)))

const unavailable = (cause: Cause.Cause<unknown>): boolean =>
  cause.reasons.some((reason) => Cause.isDieReason(reason) && isDatabaseUnavailable(reason.defect))

export const unavailableDetail = "The server cannot handle the request right now; retry later."

/** The 503 answered while the database is unreachable, logged as a warning (not a stack trace). */
const serviceUnavailable = Effect.logWarning("database unavailable while serving a request").pipe(
  Effect.andThen(HttpServerRespondable.toResponse(new ServiceUnavailable({ detail: unavailableDetail }))),
  Effect.map(HttpServerResponse.setHeader("retry-after", "5"))
)

/**
 * The same, for what runs outside the API's middleware (the rate limiter's key lookup): the edge wraps every request
 * in it.
 */
export const databaseUnavailableAs503 = <E, R>(
  self: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R> =>
  Effect.catchCauseIf(self, unavailable, () => serviceUnavailable)

export const DatabaseAvailabilityLive: Layer.Layer<DatabaseAvailability> = Layer.succeed(
  DatabaseAvailability,
  DatabaseAvailability.of((httpEffect) => databaseUnavailableAs503(httpEffect))
)
