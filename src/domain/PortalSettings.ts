/**
 * The portal's two deployment settings, parsed: `PUBLIC_URL` (where browsers reach codex-api, for the links) and
 * `PORTAL_FRAME_ANCESTORS` (the sites that may embed `/portal`). Each parser returns the value or a message.
 */

/**
 * `PUBLIC_URL`: an http(s) origin — scheme, host and optional port — with nothing after it but an optional `/`. The
 * page and the API live at fixed paths under it (`/portal`, `/v1`), so a path prefix would break them: refused.
 */
export const parsePublicUrl = (raw: string): string | { readonly error: string } => {
  let url: URL
  try {
    url = new URL(raw.trim())
  } catch {
    return { error: "must be an absolute http(s) URL such as https://codex.example.com" }
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return { error: "must be an http or https URL" }
  if (url.username !== "" || url.password !== "") return { error: "must not carry credentials" }
  if (url.pathname !== "/" || url.search !== "" || url.hash !== "" || /[?#]/.test(raw)) {
    return { error: "must be an origin only (scheme://host[:port]), without a path, query or fragment" }
  }
  return url.origin
}

/** The default: no site may frame the portal (clickjacking), until the operator names the ones that may. */
export const defaultFrameAncestors: ReadonlyArray<string> = ["'none'"]

/** A CSP host-source limited to what embedding needs: scheme, host (a leading `*.` allowed), optional port. */
const hostSource = /^https?:\/\/(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:(\d{1,5}|\*))?$/

/**
 * `PORTAL_FRAME_ANCESTORS`: the CSP `frame-ancestors` sources, separated by commas or spaces — `'self'`, origins
 * such as `https://app.example.com` or `https://*.example.com`, or `'none'` alone. Anything else (a bare scheme such as
 * `https:`, which would let every site frame it, a path, a `;` that would end the directive) is refused.
 */
export const parseFrameAncestors = (raw: string): ReadonlyArray<string> | { readonly error: string } => {
  const sources = raw.split(/[\s,]+/).filter((source) => source !== "")
  if (sources.length === 0) return { error: "must name at least one source, or 'none'" }
  if (sources.includes("'none'")) {
    return sources.length === 1 ? defaultFrameAncestors : { error: "'none' must stand alone" }
  }
  for (const source of sources) {
    if (source !== "'self'" && !hostSource.test(source.toLowerCase())) {
      return {
        error: `"${source}" is not 'self', 'none' or an origin such as https://app.example.com or https://*.example.com`
      }
    }
  }
  return sources.map((source) => (source === "'self'" ? source : source.toLowerCase()))
}
