import { Effect, Layer, Option } from "effect"
import { HttpMethod, HttpServerRequest } from "effect/http"
import { HttpApiError } from "effect/http-api"
import { duplicateMemberMessage, JsonBody, RequestJson } from "../api/JsonBody.ts"
import { JsonText, minifyJson, type Span, scanJson } from "../domain/JsonText.ts"

/** The media type as the payload decoder reads it: no parameters, any case; none counts as JSON. */
const mediaType = (header: string | undefined): string => {
  if (header === undefined) return "application/json"
  const normalized = header.toLowerCase().trim()
  const semicolon = normalized.indexOf(";")
  return semicolon === -1 ? normalized : normalized.slice(0, semicolon).trim()
}

const noJson = RequestJson.of({ member: () => Option.none() })

const membersOf = (text: string, members: ReadonlyMap<string, Span>) =>
  RequestJson.of({
    member: (name) => {
      const span = members.get(name)
      return span === undefined ? Option.none() : Option.some(JsonText(minifyJson(text, span.start, span.end)))
    }
  })

/**
 * JsonBody (see the contract). Only a body the endpoint decodes as JSON is read; anything the scan finds malformed is
 * left to the decoder, which answers it as before (400, 413, 415).
 */
export const JsonBodyLive: Layer.Layer<JsonBody> = Layer.succeed(
  JsonBody,
  JsonBody.of((httpEffect, { endpoint }) =>
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      if (
        endpoint.payload.size === 0 ||
        !HttpMethod.hasBody(request.method) ||
        mediaType(request.headers["content-type"]) !== "application/json"
      ) {
        return yield* Effect.provideService(httpEffect, RequestJson, noJson)
      }
      // Read once: the request keeps the bytes for the decoder. Too large a body is the decoder's defect (413).
      const text = yield* Effect.orDie(request.text)
      const scan = scanJson(text)
      if (scan._tag === "DuplicateName") {
        return yield* new HttpApiError.BadRequestProblem({
          detail: "Request validation failed",
          errors: [{ path: ["payload", ...scan.path], message: duplicateMemberMessage }]
        })
      }
      const json = scan._tag === "Valid" ? membersOf(text, scan.members) : noJson
      return yield* Effect.provideService(httpEffect, RequestJson, json)
    })
  )
)
