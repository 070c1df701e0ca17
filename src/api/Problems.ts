import { STATUS_CODES } from "node:http"
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

/** The body of a generic problem for `status`: what the edge writes when a response has no body of its own. */
export const genericProblem = (status: number, detail: string): ProblemDetails.ProblemDetails => ({
  type: ProblemDetails.blankType,
  title: STATUS_CODES[status] ?? "Error",
  status,
  detail
})
