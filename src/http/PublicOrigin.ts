import { Effect, Option } from "effect"
import { HttpServerRequest } from "effect/http"
import type { AppConfigShape } from "../../services/AppConfig.ts"
import { BadRequest } from "../api/Problems.ts"

/** A Host header naming a host (a name, IPv4 or a bracketed IPv6) and an optional port, and nothing else. */
const hostHeader = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:\d{1,5})?$/

/**
 * The origin the links this server hands out are built on: `PUBLIC_URL`, else the origin the request was sent to —
 * its `Host`, over `http` in development and `https` elsewhere (staging and production sit behind TLS: they send HSTS).
 * The request is authenticated (a tenant's key, the admin token) and the link goes back to its sender only, so a Host
 * it chose misleads no one else; a server called by an internal name (`http://codex-api:3000`) needs PUBLIC_URL.
 */
export const publicOrigin = (
  config: AppConfigShape
): Effect.Effect<string, BadRequest, HttpServerRequest.HttpServerRequest> =>
  Effect.gen(function* () {
    if (Option.isSome(config.publicUrl)) return config.publicUrl.value
    const host = (yield* HttpServerRequest.HttpServerRequest).headers.host
    if (host === undefined || !hostHeader.test(host)) {
      return yield* new BadRequest({
        detail: "The Host header names no host to build the link on (or set PUBLIC_URL)."
      })
    }
    return `${config.appEnv === "development" ? "http" : "https"}://${host.toLowerCase()}`
  })
