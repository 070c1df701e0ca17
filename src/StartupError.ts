import { Cause, Exit, type Runtime, SchemaIssue } from "effect"

const formatIssue = SchemaIssue.makeFormatterStandardSchemaV1()

const isTagged = (u: unknown, tag: string): u is { readonly _tag: string } =>
  typeof u === "object" && u !== null && "_tag" in u && u._tag === tag

/** Messages from drivers and libraries may span lines (the migrator's do); the report must stay one line. */
const oneLine = (text: string): string => text.replace(/\s*[\r\n]+\s*/g, " ").trim()

/**
 * One line for an error that stops startup: `invalid configuration: PORT: Expected ...` rather than a stack trace.
 * Operators read this in `kubectl logs`; the variable name and the problem are what they need.
 */
export const describeStartupFailure = (error: unknown): string => oneLine(describe(error))

const describe = (error: unknown): string => {
  if (isTagged(error, "ConfigError") && "cause" in error) {
    const cause = error.cause
    if (typeof cause === "object" && cause !== null && "issue" in cause && SchemaIssue.isIssue(cause.issue)) {
      const [first] = formatIssue(cause.issue).issues
      if (first !== undefined) {
        const path = (first.path ?? []).map(String).join(".")
        return `invalid configuration: ${path.length > 0 ? `${path}: ` : ""}${first.message}`
      }
    }
    return `invalid configuration: ${String(cause)}`
  }
  return `startup failed: ${causeChain(error)}`
}

/** `Tag: message` of an error and of the causes under it, joined: the root cause is usually the useful part. */
const causeChain = (error: unknown): string => {
  const parts: Array<string> = []
  let current: unknown = error
  for (let depth = 0; depth < 4 && typeof current === "object" && current !== null; depth++) {
    const tag = "_tag" in current && typeof current._tag === "string" ? current._tag : undefined
    const message = "message" in current && typeof current.message === "string" ? current.message : undefined
    const part = [tag, message].filter((p) => p !== undefined && p.length > 0).join(": ")
    if (part.length > 0 && !parts.includes(part)) parts.push(part)
    current = "cause" in current ? current.cause : undefined
  }
  return parts.length > 0 ? parts.join(" <- ") : String(error)
}

/**
 * Runs a long-lived program and turns its ending into an exit code: a clean stop after SIGTERM/SIGINT (an
 * interrupt) is 0, not the runtime's default 130; a failure prints one line to stderr and exits 1.
 */
export const exitCodeTeardown: Runtime.Teardown = (exit, onExit) => {
  if (Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause)) return onExit(0)
  const failure = exit.cause.reasons.find(Cause.isFailReason)
  process.stderr.write(
    `${failure !== undefined ? describeStartupFailure(failure.error) : `fatal: ${Cause.pretty(exit.cause)}`}\n`
  )
  onExit(1)
}
