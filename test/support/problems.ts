import { assert } from "@effect/vitest"
import { quotaExceededType } from "../../src/http/RateLimit.ts"

/**
 * Asserting RFC 9457 problem details on the wire: every error answer of the API is an `application/problem+json`
 * document whose members agree with the response, and none carries the server's internals.
 *
 * @example
 * const problem = expectProblem(yield* request("/v1/events", { bearer: "wrong" }), 401)
 * assert.strictEqual(problem.detail, "...")
 */

/** What a problem check reads of a response: any raw reply (test server, process, fetch). */
export interface ProblemResponse {
  readonly status: number
  readonly headers: Headers
  readonly text: string
}

export interface ProblemExpectation {
  /**
   * The `type` member. Default `about:blank`, or for a 429 the quota-exceeded type: only the rate limiter answers
   * 429, and it uses the IANA-registered types (the other, reduced capacity, a 503 a test names itself).
   */
  readonly type?: string
  /** Strings that must not reach the client (a defect's message, a secret the request carried). */
  readonly withholds?: ReadonlyArray<string>
  /**
   * Strings the client sent, which a `detail` may quote back (a refused value, a member name): left out of the check
   * for internals, so that a generated input reading `Error:` or `at x (` is not taken for a leak.
   */
  readonly echoes?: ReadonlyArray<string>
}

/** Asserts a problem with `status` (see `problemBody`) and returns its members. */
export const expectProblem = (
  response: ProblemResponse,
  status: number,
  expectation: ProblemExpectation = {}
): Record<string, unknown> => {
  assert.strictEqual(response.status, status, response.text)
  return problemBody(response, expectation)
}

/**
 * Asserts the response is a problem consistent with its own status, whatever that is: the content type, `status`
 * equal to the response's, `type`, a non-empty `title` and `detail`, and no internals (stack frames, exception text,
 * failure tags). Returns its members.
 */
export const problemBody = (
  response: ProblemResponse,
  expectation: ProblemExpectation = {}
): Record<string, unknown> => {
  assert.strictEqual(response.headers.get("content-type"), "application/problem+json", response.text)
  const body = JSON.parse(response.text) as Record<string, unknown>
  assert.strictEqual(body.status, response.status, response.text)
  const type = expectation.type ?? (response.status === 429 ? quotaExceededType : "about:blank")
  assert.strictEqual(body.type, type, response.text)
  assert.isString(body.title)
  assert.isNotEmpty(body.title)
  assert.isString(body.detail)
  assert.isNotEmpty(body.detail)
  expectNoInternals(withoutEchoes(response.text, expectation.echoes ?? []), expectation.withholds ?? [])
  return body
}

const stackFrame = /\bat\s+\S+\s+\(|\bat\s+(file|node):|\.ts:\d+/
const internalWords = ["stack", "Error:", "_tag"]

/** Whether a text looks like internals: a stack frame, or a word that only exceptions and failures carry. */
const looksInternal = (text: string): boolean => stackFrame.test(text) || internalWords.some((w) => text.includes(w))

/**
 * `text` (JSON) without the client's own strings that look like internals, as JSON spells them, longest first (only
 * those: removing an innocent short string everywhere could hide a real leak).
 */
const withoutEchoes = (text: string, echoes: ReadonlyArray<string>): string =>
  [...echoes]
    .filter(looksInternal)
    .map((echo) => JSON.stringify(echo).slice(1, -1))
    .sort((a, b) => b.length - a.length)
    .reduce((rest, echo) => rest.replaceAll(echo, ""), text)

/** No stack frames, no exception text, no failure internals, none of `withheld` in what the client sees. */
const expectNoInternals = (text: string, withheld: ReadonlyArray<string>) => {
  assert.notMatch(text, stackFrame)
  for (const word of internalWords) assert.notInclude(text, word)
  for (const value of withheld) assert.notInclude(text, value)
}

/** The `errors[].path` of a 400 problem. */
export const errorPaths = (body: Record<string, unknown>): ReadonlyArray<ReadonlyArray<string | number>> => {
  assert.isArray(body.errors)
  return (body.errors as ReadonlyArray<{ readonly path: ReadonlyArray<string | number> }>).map((e) => e.path)
}
