import { Cause, Effect } from "effect"
import { HttpServerError, ProblemDetails } from "effect/http"
import type { HttpServerRequest } from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import { genericProblem } from "../api/Problems.ts"
import { pathOf } from "../domain/RequestPath.ts"
import { unavailableDetail } from "./DatabaseAvailability.ts"

const isJsonBody = (response: HttpServerResponse.HttpServerResponse): boolean => {
  const body = response.body
  const contentType = (body._tag === "Empty" ? undefined : body.contentType) ?? response.headers["content-type"]
  return contentType?.includes("json") === true
}

const detailFor = (status: number, request: HttpServerRequest, bodyLimitBytes: number): string => {
  switch (status) {
    case 400:
      return "The request could not be parsed."
    case 404:
      return `No route matches ${request.method} ${pathOf(request.url)}.`
    case 413:
      return `The request body exceeds the limit of ${bodyLimitBytes} bytes.`
    case 415:
      return "The request body must be JSON (Content-Type: application/json)."
    case 503:
      return unavailableDetail
    default:
      return status >= 500 ? "An unexpected error occurred." : "The request failed."
  }
}

/**
 * Every error leaves as `application/problem+json`. Typed errors and decode failures already are; what the server
 * answers by itself (unknown route, body too large, wrong media type, defects) has an empty body and is rewritten
 * here, keeping its status and headers. Nothing from the failure itself (messages, stacks) reaches the client.
 */
export const ensureProblemBody = (
  request: HttpServerRequest,
  response: HttpServerResponse.HttpServerResponse,
  bodyLimitBytes: number
): HttpServerResponse.HttpServerResponse => {
  if (response.status < 400 || isJsonBody(response) || HttpServerResponse.omitsBody(response)) return response
  const problem = genericProblem(response.status, detailFor(response.status, request, bodyLimitBytes))
  return HttpServerResponse.setBody(
    response,
    HttpServerResponse.jsonUnsafe(problem, { contentType: ProblemDetails.contentType }).body
  )
}

const expectedReasons: ReadonlySet<string> = new Set(["RequestParseError", "RouteNotFound"])

/**
 * Failures the server answers on its own and that say nothing about our code (unreadable or oversized body, no
 * route): not worth an error log. They arrive wrapped in an `HttpServerError` whose `reason` carries the tag (an
 * over-size body is `HttpServerError { reason: RequestParseError { reason: "BodyTooLarge" } }`).
 */
const isExpected = (defect: unknown): boolean =>
  HttpServerError.isHttpServerError(defect)
    ? expectedReasons.has(defect.reason._tag)
    : typeof defect === "object" && defect !== null && "_tag" in defect && expectedReasons.has(String(defect._tag))

/** Logs defects (bugs) with their stack: the client only ever sees a generic 500 problem. */
export const logDefects = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.tapCause(self, (cause) => {
    const defects = cause.reasons.filter((reason) => Cause.isDieReason(reason) && !isExpected(reason.defect))
    return defects.length === 0
      ? Effect.void
      : Effect.logError("unhandled defect while serving a request", Cause.fromReasons(defects))
  })
