import { STATUS_CODES } from "node:http"
import { Schema } from "effect"
import { ProblemDetails } from "effect/http"
import { HttpApiError } from "effect/http-api"

/**
 * RFC 9457 problem types shared by every group. Generic HTTP conditions use `about:blank`, whose title is by
 * definition the status phrase; the `detail` member says what went wrong for this request.
 */
export class ServiceUnavailable extends HttpApiError.Problem<ServiceUnavailable>()("ServiceUnavailable", {
  type: ProblemDetails.blankType,
  status: 503,
  title: "Service Unavailable"
}) {}

/** A request the server will not process as sent (a malformed or missing `Idempotency-Key`, say). */
export class BadRequest extends HttpApiError.Problem<BadRequest>()("BadRequest", {
  type: ProblemDetails.blankType,
  status: 400,
  title: "Bad Request"
}) {}

/** Every credential failure (missing, malformed, unknown, revoked) is this one problem: it must not tell them apart. */
export class Unauthorized extends HttpApiError.Problem<Unauthorized>()("Unauthorized", {
  type: ProblemDetails.blankType,
  status: 401,
  title: "Unauthorized"
}) {}

/** A valid credential without the right to do this (a `read` API key sending a write). */
export class Forbidden extends HttpApiError.Problem<Forbidden>()("Forbidden", {
  type: ProblemDetails.blankType,
  status: 403,
  title: "Forbidden"
}) {}

/** Unknown, malformed or other-tenant ids all answer this: existence is never revealed across tenants. */
export class NotFound extends HttpApiError.Problem<NotFound>()("NotFound", {
  type: ProblemDetails.blankType,
  status: 404,
  title: "Not Found"
}) {}

export class Conflict extends HttpApiError.Problem<Conflict>()("Conflict", {
  type: ProblemDetails.blankType,
  status: 409,
  title: "Conflict"
}) {}

/** One reason a 422 gives: where in the request (an RFC 6901 JSON pointer into the body) and what. */
export const Violation = Schema.Struct({
  pointer: Schema.String.annotate({ description: "RFC 6901 JSON pointer into the request body: `/data/amount`." }),
  message: Schema.String
}).annotate({ identifier: "Violation" })

/**
 * Well-formed input the server refuses (an endpoint URL pointing into a private network, say). `errors`, when
 * present, lists each violation with its JSON pointer (an event's `data` against its type's schema, say).
 */
export class UnprocessableContent extends HttpApiError.Problem<UnprocessableContent>()(
  "UnprocessableContent",
  {
    type: ProblemDetails.blankType,
    status: 422,
    title: "Unprocessable Content"
  },
  { errors: Schema.optionalKey(Schema.Array(Violation)) }
) {}

/** The body of a generic problem for `status`: what the edge writes when a response has no body of its own. */
export const genericProblem = (status: number, detail: string): ProblemDetails.ProblemDetails => ({
  type: ProblemDetails.blankType,
  title: STATUS_CODES[status] ?? "Error",
  status,
  detail
})
