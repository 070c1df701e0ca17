/**
 * An endpoint URL may carry credentials (`https://user:password@host/hook`). The password is never shown back: every
 * response (and log line) names the URL with it masked, while the stored URL keeps it for the deliveries.
 */

/** What a password is shown as. */
export const maskedPassword = "****"

/**
 * The URL with its password (if any) replaced by `****`, the rest untouched (no re-serialisation, so the URL reads as
 * it was registered). The authority is read as WHATWG URL parsing reads it for http(s): it ends at the first `/`, `?`,
 * `#` or `\`, and the userinfo ends at its last `@`.
 */
export const maskUrlPassword = (url: string): string => {
  const schemeEnd = url.indexOf("://")
  if (schemeEnd === -1) return url
  const authorityStart = schemeEnd + 3
  let authorityEnd = url.length
  for (let i = authorityStart; i < url.length; i++) {
    const char = url[i]
    if (char === "/" || char === "?" || char === "#" || char === "\\") {
      authorityEnd = i
      break
    }
  }
  const at = url.lastIndexOf("@", authorityEnd - 1)
  if (at < authorityStart) return url
  const colon = url.indexOf(":", authorityStart)
  if (colon === -1 || colon > at || colon === at - 1) return url
  return `${url.slice(0, colon + 1)}${maskedPassword}${url.slice(at)}`
}

/**
 * How a URL with credentials is called: HTTP Basic authentication (RFC 7617) with its user and password
 * (percent-decoded), sent to the URL without them — an HTTP client drops userinfo on its own, silently. Undefined
 * `authorization` when the URL names no user.
 */
export const basicAuthTarget = (raw: string): { readonly url: string; readonly authorization: string | undefined } => {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return { url: raw, authorization: undefined }
  }
  if (url.username === "" && url.password === "") return { url: raw, authorization: undefined }
  const decode = (part: string) => {
    try {
      return decodeURIComponent(part)
    } catch {
      return part
    }
  }
  const credentials = `${decode(url.username)}:${decode(url.password)}`
  url.username = ""
  url.password = ""
  return { url: url.href, authorization: `Basic ${Buffer.from(credentials, "utf8").toString("base64")}` }
}
