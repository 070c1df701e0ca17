import type { AppEnv } from "../../services/AppConfig.ts"

/**
 * What an API response may do in a browser: nothing. JSON is data, never a page: no script, no style, no frame (OWASP's
 * advice for REST APIs). A page of ours (/docs) sets its own policy, which the edge keeps.
 */
export const apiContentSecurityPolicy = "default-src 'none'; frame-ancestors 'none'"

/**
 * Headers every response carries. API responses are never cached (they hold tenant data). HSTS only in production,
 * where TLS terminates in front of us; sending it from a plain-HTTP development server would pin browsers to HTTPS.
 */
export const securityHeaders = (appEnv: AppEnv): Readonly<Record<string, string>> => ({
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
  "content-security-policy": apiContentSecurityPolicy,
  ...(appEnv === "production" ? { "strict-transport-security": "max-age=63072000; includeSubDomains" } : {})
})
