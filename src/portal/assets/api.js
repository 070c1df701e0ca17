import { session } from "./session.js"

/** A refusal of the API, with what its problem+json document says (RFC 9457 `detail`, and the failing members). */
export class ApiError extends Error {
  constructor(status, message) {
    super(message)
    this.status = status
  }
}

const describe = (status, problem) => {
  if (problem === undefined || typeof problem !== "object") return `The request failed (HTTP ${status}).`
  const detail = problem.detail ?? problem.title ?? `HTTP ${status}`
  const errors = Array.isArray(problem.errors)
    ? problem.errors.map((e) => `${e.pointer ?? (Array.isArray(e.path) ? e.path.join(".") : "")}: ${e.message}`)
    : []
  return errors.length === 0 ? detail : `${detail} (${errors.join("; ")})`
}

/**
 * Calls the codex-api `/v1` route `path` as the session's tenant: `Authorization: Bearer <token>`, JSON both ways.
 * Resolves with the answer's JSON (undefined for 204); rejects with an ApiError. A 401 ends the session.
 */
export const api = async (path, { method = "GET", body } = {}) => {
  const headers = { authorization: `Bearer ${session.token}`, accept: "application/json" }
  if (body !== undefined) headers["content-type"] = "application/json"
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await response.text()
  const json = text === "" ? undefined : JSON.parse(text)
  if (response.status === 401) session.end()
  if (!response.ok) throw new ApiError(response.status, describe(response.status, json))
  return json
}

/** `path?name=value&...`, leaving out empty values. */
export const withQuery = (path, query) => {
  const params = new URLSearchParams()
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(name, String(value))
  }
  const text = params.toString()
  return text === "" ? path : `${path}?${text}`
}
