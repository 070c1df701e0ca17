import { createHash } from "node:crypto"
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { AppConfig } from "../../services/AppConfig.ts"
import { RouteTemplate } from "../http/RequestContext.ts"
import { loadPortalAssets, type PortalAssets } from "./PortalAssets.ts"

/**
 * The tenant portal's page (issue 23): `GET /portal`, a shell that loads the portal's modules, and
 * `GET /portal/assets/<version>/<file>`, the files it loads. The page is nothing without a session's token, which it
 * reads from the URL's fragment (src/portal/assets/session.js) and sends to the same `/v1` routes as the API.
 */

/**
 * The page's policy: scripts from this origin and the inline import map (by its SHA-256), nothing inline otherwise;
 * styles from this origin; calls to this origin; images from it or data URLs (Pico's icons). No `<base>`, no form
 * posting anywhere, and framed only by the sites PORTAL_FRAME_ANCESTORS names (`'none'` by default). No
 * X-Frame-Options: it cannot name several sites, and browsers obeying CSP ignore it anyway.
 */
export const portalContentSecurityPolicy = (importMap: string, frameAncestors: ReadonlyArray<string>): string =>
  [
    "default-src 'none'",
    `script-src 'self' 'sha256-${createHash("sha256").update(importMap, "utf8").digest("base64")}'`,
    "style-src 'self'",
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    `frame-ancestors ${frameAncestors.join(" ")}`
  ].join("; ")

/** The HTML shell: the stylesheets, the import map, the modules preloaded (no waterfall), a landmark to render into. */
export const portalHtml = (assets: PortalAssets): string =>
  `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Webhooks</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${assets.url("pico.min.css")}">
<link rel="stylesheet" href="${assets.url("portal.css")}">
<script type="importmap">${assets.importMap}</script>
${["preact.js", "preact-hooks.js", "htm.js", "main.js"].map((name) => `<link rel="modulepreload" href="${assets.url(name)}">`).join("\n")}
<script type="module" src="${assets.url("main.js")}"></script>
</head>
<body>
<div id="portal"><main class="container"><p aria-busy="true">Loading…</p></main></div>
<noscript><main class="container"><p>The webhooks portal needs JavaScript.</p></main></noscript>
</body>
</html>
`

/** A year: the path changes with the content, so a stored copy is never wrong. */
const immutable = "public, max-age=31536000, immutable"

/** An unknown file, or one of another version (a page from before an upgrade): the edge writes the 404 problem. */
const notFound = HttpServerResponse.empty({ status: 404 })

export const PortalRoutes = Layer.unwrap(
  Effect.gen(function* () {
    const config = yield* AppConfig
    const assets = loadPortalAssets()
    const page = HttpServerResponse.text(portalHtml(assets), {
      contentType: "text/html; charset=utf-8",
      headers: {
        "content-security-policy": portalContentSecurityPolicy(assets.importMap, config.portal.frameAncestors)
      }
    })
    const asset = Effect.gen(function* () {
      const { version = "", file = "" } = yield* HttpRouter.params
      const found = version === assets.version ? assets.files.get(file) : undefined
      if (found === undefined) return notFound
      return HttpServerResponse.uint8Array(found.body, {
        contentType: found.contentType,
        headers: { "cache-control": immutable }
      })
    })
    return Layer.mergeAll(
      HttpRouter.add("GET", "/portal", Effect.succeed(page)),
      HttpRouter.add("GET", "/portal/assets/:version/:file", asset)
    ).pipe(Layer.provide(RouteTemplate))
  })
)
