import { createHash } from "node:crypto"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { packageRoot } from "../domain/PackageInfo.ts"

/**
 * The portal's files, read once at startup and served from memory: its own modules and stylesheet
 * (src/portal/assets/, plain ES modules, no build step) and three npm packages as their authors ship them for
 * browsers — Preact and its hooks (the components), htm (JSX-like tagged templates, so no compiler), Pico CSS
 * (semantic HTML styled, light and dark). Nothing comes from a CDN: the page works offline and under a strict CSP.
 *
 * Every file is served under `/portal/assets/<version>/<name>`, `version` a digest of them all, so a browser may keep
 * them for a year (`immutable`): a new release has a new path. The packages' `sourceMappingURL` comments are
 * dropped (their maps are not served).
 */

export interface PortalAsset {
  readonly body: Uint8Array
  readonly contentType: string
}

export interface PortalAssets {
  readonly version: string
  readonly files: ReadonlyMap<string, PortalAsset>
  /** The page's import map: the bare names the modules import (`preact`, `preact/hooks`, `htm`) to their URLs. */
  readonly importMap: string
  /** The URL of a file of this version. */
  readonly url: (name: string) => string
}

/** The npm files the page uses, by the name they are served under. */
const vendored: ReadonlyArray<{ readonly name: string; readonly path: string; readonly specifier?: string }> = [
  { name: "preact.js", path: "node_modules/preact/dist/preact.mjs", specifier: "preact" },
  { name: "preact-hooks.js", path: "node_modules/preact/hooks/dist/hooks.mjs", specifier: "preact/hooks" },
  { name: "htm.js", path: "node_modules/htm/dist/htm.module.js", specifier: "htm" },
  { name: "pico.min.css", path: "node_modules/@picocss/pico/css/pico.min.css" }
]

const ownDirectory = join(packageRoot, "src", "portal", "assets")

const contentTypes: Readonly<Record<string, string>> = {
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8"
}

const withoutSourceMap = (text: string): string => text.replace(/^\/[/*]# sourceMappingURL=.*$/gm, "")

/** Reads every file; a missing one is a packaging defect, so it fails the start, not a page view. */
export const loadPortalAssets = (): PortalAssets => {
  const sources = [
    ...vendored.map(({ name, path }) => ({ name, path: join(packageRoot, path) })),
    ...readdirSync(ownDirectory)
      .filter((name) => /\.(js|css)$/.test(name))
      .sort()
      .map((name) => ({ name, path: join(ownDirectory, name) }))
  ]
  const digest = createHash("sha256")
  const files = new Map<string, PortalAsset>()
  for (const { name, path } of sources) {
    const body = Buffer.from(withoutSourceMap(readFileSync(path, "utf8")), "utf8")
    digest.update(name).update(body)
    files.set(name, { body, contentType: contentTypes[name.slice(name.lastIndexOf(".") + 1)] ?? "text/plain" })
  }
  const version = digest.digest("hex").slice(0, 16)
  const url = (name: string) => `/portal/assets/${version}/${name}`
  const imports = Object.fromEntries(
    vendored.flatMap(({ name, specifier }) => (specifier === undefined ? [] : [[specifier, url(name)]]))
  )
  return { version, files, importMap: JSON.stringify({ imports }), url }
}
