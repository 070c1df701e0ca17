/**
 * Who a client acts as, and which credential each request carries: the admin token on `/admin` routes; on `/v1`
 * routes the tenant's API key, or, with `tenant`, the admin token plus the operator header `Codex-Tenant` (the admin
 * acting as that tenant, as Stripe-Account does). Shared by the promise client and the Effect client.
 */
export type CodexCredentials =
  | {
      /** A tenant API key (`ck_...`): sent on `/v1` routes. */
      readonly apiKey?: string | undefined
      /** The server's ADMIN_TOKEN: sent on `/admin` routes. */
      readonly adminToken?: string | undefined
      readonly tenant?: undefined
    }
  | {
      readonly apiKey?: undefined
      /** The server's ADMIN_TOKEN: sent on `/admin` routes, and on `/v1` routes with `Codex-Tenant`. */
      readonly adminToken: string
      /** Act as this tenant (`ten_...`) on `/v1` routes: the operator header. */
      readonly tenant: string
    }

/** The operator header: with the admin token, a `/v1` request acts as the tenant it names. */
export const tenantHeader = "Codex-Tenant"

/** The headers a request to `path` (the route's path, without the base URL's own path) gets from `credentials`. */
export const credentialHeaders = (path: string, credentials: CodexCredentials): Record<string, string> => {
  const bearer = (token: string | undefined): Record<string, string> =>
    token === undefined ? {} : { Authorization: `Bearer ${token}` }
  if (path === "/admin" || path.startsWith("/admin/")) return bearer(credentials.adminToken)
  if (!path.startsWith("/v1/")) return {}
  if (credentials.tenant !== undefined) return { ...bearer(credentials.adminToken), [tenantHeader]: credentials.tenant }
  return bearer(credentials.apiKey)
}

/** The route's path of a request URL: its pathname, less the base URL's own path (`https://host/codex` + `/v1/...`). */
export const routePath = (url: string, baseUrl: string): string => {
  const pathname = new URL(url, "http://localhost").pathname
  const basePath = new URL(baseUrl, "http://localhost").pathname.replace(/\/+$/, "")
  return basePath !== "" && pathname.startsWith(`${basePath}/`) ? pathname.slice(basePath.length) : pathname
}
