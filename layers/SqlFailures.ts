import { Effect } from "effect"
import { SqlError } from "effect/sql"

/**
 * A repository's database failures are not its callers' to handle: nothing they could do differs by the failure.
 * Here they become defects, so that service signatures carry only domain errors (`EndpointDisabled`, ...). The API
 * answers a defect from an unreachable database with a 503 (src/http/DatabaseAvailability.ts), any other with a 500
 * and a logged cause.
 */
export const sqlFailuresAsDefects = <A, E, R>(
  self: Effect.Effect<A, E, R>
): Effect.Effect<A, Exclude<E, Extract<E, SqlError.SqlError>>, R> =>
  Effect.catchIf(
    self,
    (error): error is Extract<E, SqlError.SqlError> => SqlError.isSqlError(error),
    (error) => Effect.die(error),
    (error) => Effect.fail(error)
  )
