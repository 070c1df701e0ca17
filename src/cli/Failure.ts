import { Data } from "effect"

/**
 * How a `codex` command fails, and the exit code each way gets (README "From the terminal"):
 *
 * - 1 `ApiError`: the server answered with a problem (4xx/5xx); `MigrationFailed`: `codex migrate` did not complete;
 * - 2 `UsageError`: the command line, a file or the configuration is wrong (and effect/cli's own parse errors);
 * - 3 `Unreachable`: no answer (connection refused, DNS, timeout).
 */
export const exitCodes = { ok: 0, api: 1, usage: 2, unreachable: 3, interrupted: 130 } as const

/** One reason of a 400 (`path`) or a 422 (`pointer`), as the problem lists it. */
export interface ProblemReason {
  readonly where: string
  readonly message: string
}

export class ApiError extends Data.TaggedError("ApiError")<{
  readonly status: number
  readonly title: string
  readonly detail: string | undefined
  readonly reasons: ReadonlyArray<ProblemReason>
  /** The problem document as the server sent it (printed as is with `--json`). */
  readonly problem: unknown
  /** Seconds, from a 429's or 503's `Retry-After`. */
  readonly retryAfter: number | undefined
}> {}

export class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}

export class Unreachable extends Data.TaggedError("Unreachable")<{ readonly url: string; readonly reason: string }> {}

/** `codex migrate`'s child (src/migrate.ts) ended with `code`; it printed why. */
export class MigrationFailed extends Data.TaggedError("MigrationFailed")<{ readonly code: number | null }> {}

export type CliFailure = ApiError | UsageError | Unreachable | MigrationFailed

const failureTags: ReadonlySet<unknown> = new Set(["ApiError", "UsageError", "Unreachable", "MigrationFailed"])

export const isCliFailure = (error: unknown): error is CliFailure =>
  typeof error === "object" && error !== null && "_tag" in error && failureTags.has(error._tag)

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null

/** The reasons a problem's `errors` member lists: `{ path: [...], message }` (400) or `{ pointer, message }` (422). */
const reasonsOf = (errors: unknown): ReadonlyArray<ProblemReason> =>
  Array.isArray(errors)
    ? errors.flatMap((entry: unknown) => {
        if (!isRecord(entry) || typeof entry.message !== "string") return []
        const where = Array.isArray(entry.path)
          ? entry.path.map(String).join(".")
          : typeof entry.pointer === "string"
            ? entry.pointer
            : ""
        return [{ where, message: entry.message }]
      })
    : []

/** An error answer as an `ApiError`: its problem document when it has one, else the status line. */
export const apiErrorOf = (response: Response, body: unknown): ApiError => {
  const problem = isRecord(body) ? body : {}
  const retryAfter = Number(response.headers.get("retry-after") ?? Number.NaN)
  return new ApiError({
    status: response.status,
    title: typeof problem.title === "string" ? problem.title : response.statusText || "Error",
    detail: typeof problem.detail === "string" ? problem.detail : undefined,
    reasons: reasonsOf(problem.errors),
    problem: body ?? null,
    retryAfter: Number.isFinite(retryAfter) ? retryAfter : undefined
  })
}

/** The lines a failure prints on stderr. */
export const describeFailure = (failure: CliFailure): ReadonlyArray<string> => {
  switch (failure._tag) {
    case "ApiError":
      return [
        `codex: ${failure.status} ${failure.title}${failure.detail === undefined ? "" : `: ${failure.detail}`}`,
        ...failure.reasons.map((r) => `  ${r.where === "" ? "" : `${r.where}: `}${r.message}`)
      ]
    case "UsageError":
      return [`codex: ${failure.message}`]
    case "MigrationFailed":
      return [`codex: the migrations did not complete (exit ${failure.code ?? "by a signal"})`]
    case "Unreachable":
      return [
        `codex: cannot reach ${failure.url} (${failure.reason})`,
        "  Is the server running? Set its address with --url, CODEX_URL or a profile (codex --help)."
      ]
  }
}

export const exitCodeOf = (failure: CliFailure): number => {
  switch (failure._tag) {
    case "ApiError":
    case "MigrationFailed":
      return exitCodes.api
    case "UsageError":
      return exitCodes.usage
    case "Unreachable":
      return exitCodes.unreachable
  }
}
