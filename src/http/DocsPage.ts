import { createHash } from "node:crypto"
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { HttpApiScalar } from "effect/http-api"
import { Api } from "../api/Api.ts"
import { RouteTemplate } from "./RequestContext.ts"

/**
 * The Content-Security-Policy of an HTML page made of inline scripts (the Scalar reference: its bundle and the call
 * that starts it): exactly those scripts may run, by their SHA-256, and nothing else — no script from elsewhere, no
 * injected one, no plugin, no form posting out, no framing by another site (clickjacking). Styles stay inline (Scalar
 * writes its own), images and fonts may be data URLs, and the page's "try it" client may call this origin only.
 */
export const inlinePageCsp = (html: string): string => {
  const hashes = Array.from(
    html.matchAll(/<script>([\s\S]*?)<\/script>/g),
    (match) =>
      `'sha256-${createHash("sha256")
        .update(match[1] ?? "", "utf8")
        .digest("base64")}'`
  )
  return [
    "default-src 'none'",
    `script-src ${hashes.length === 0 ? "'none'" : hashes.join(" ")}`,
    "style-src 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'"
  ].join("; ")
}

/** Policies per page body: the page is rendered once and served as the same body ever after. */
const policies = new WeakMap<object, string>()

const withPagePolicy = (response: HttpServerResponse.HttpServerResponse): HttpServerResponse.HttpServerResponse => {
  const body = response.body
  if (body._tag !== "Uint8Array" || !body.contentType.startsWith("text/html")) return response
  let policy = policies.get(body)
  if (policy === undefined) {
    policy = inlinePageCsp(body.text ?? new TextDecoder().decode(body.body))
    policies.set(body, policy)
  }
  return HttpServerResponse.setHeader(response, "content-security-policy", policy)
}

/**
 * `GET /docs`: the Scalar API reference of the whole contract, under its own Content-Security-Policy. Without
 * Scalar's web fonts (loaded from its CDN): the page makes no request to a third party.
 */
export const DocsRoute = HttpApiScalar.layer(Api, { path: "/docs", scalar: { withDefaultFonts: false } }).pipe(
  Layer.provide(HttpRouter.middleware((httpEffect) => Effect.map(httpEffect, withPagePolicy)).layer),
  Layer.provide(RouteTemplate)
)
