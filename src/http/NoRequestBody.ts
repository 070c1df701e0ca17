import { Effect, Layer } from "effect"
import { HttpServerRequest } from "effect/http"
import { NoRequestBody } from "../api/NoRequestBody.ts"
import { BadRequest } from "../api/Problems.ts"

/** Why a body is refused where none is taken; undefined = nothing was sent (empty, or `{}`). */
export const unexpectedBody = (text: string): string | undefined => {
  if (text.trim() === "") return undefined
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return "This endpoint takes no request body."
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return "This endpoint takes no request body."
  }
  const members = Object.keys(value)
  if (members.length === 0) return undefined
  return `This endpoint takes no request body; unexpected member${members.length === 1 ? "" : "s"}: ${members
    .slice(0, 5)
    .map((m) => JSON.stringify(m))
    .join(", ")}.`
}

export const NoRequestBodyLive: Layer.Layer<NoRequestBody> = Layer.succeed(
  NoRequestBody,
  NoRequestBody.of((httpEffect) =>
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      // Unreadable (too large, say): the body is refused all the same.
      const text = yield* request.text.pipe(Effect.orElseSucceed(() => "x"))
      const refusal = unexpectedBody(text)
      if (refusal !== undefined) return yield* new BadRequest({ detail: refusal })
      return yield* httpEffect
    })
  )
)
