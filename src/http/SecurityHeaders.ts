import type { AppEnv } from "../../services/AppConfig.ts"

/**
 * Headers every response carries. API responses are never cached (they hold tenant data). HSTS only in production,
 * where TLS terminates in front of us; sending it from a plain-HTTP development server would pin browsers to HTTPS.
 */
export const securityHeaders = (appEnv: AppEnv): Readonly<Record<string, string>> => ({
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
  ...(appEnv === "production" ? { "strict-transport-security": "max-age=63072000; includeSubDomains" } : {})
})
