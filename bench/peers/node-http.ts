/**
 * The ceiling: bare `node:http` doing codex-api's job for the benchmarked routes with the same production pieces
 * (common.ts) and a minimal fixed-window in-memory rate limiter (what the frameworks' plugins do).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import {
  accessLog,
  authenticate,
  listEvents,
  listening,
  metricsContentType,
  metricsText,
  observe,
  port,
  rateLimit,
  requestId,
  unauthorized
} from "./common.ts"

const windows = new Map<string, { count: number; resetAt: number }>()
const allowed = (key: string): boolean => {
  const now = Date.now()
  const window = windows.get(key)
  if (window === undefined || window.resetAt <= now) {
    windows.set(key, { count: 1, resetAt: now + rateLimit.windowMs })
    return true
  }
  window.count++
  return window.count <= rateLimit.max
}

const json = (res: ServerResponse, status: number, body: unknown, type = "application/json") => {
  res.writeHead(status, { "content-type": type })
  res.end(JSON.stringify(body))
}

const handle = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<[string, string | undefined]> => {
  if (!allowed(req.socket.remoteAddress ?? "")) {
    json(res, 429, { title: "Too Many Requests", status: 429 }, "application/problem+json")
    return ["rate-limited", undefined]
  }
  if (req.method === "GET" && url.pathname === "/livez") {
    json(res, 200, { status: "pass" })
    return ["/livez", undefined]
  }
  if (req.method === "GET" && url.pathname === "/metrics") {
    res.writeHead(200, { "content-type": metricsContentType })
    res.end(await metricsText())
    return ["/metrics", undefined]
  }
  if (req.method === "GET" && url.pathname === "/v1/events") {
    const tenantId = await authenticate(req.headers.authorization)
    if (tenantId === undefined) {
      json(res, 401, unauthorized, "application/problem+json")
      return ["/v1/events", undefined]
    }
    json(res, 200, await listEvents(tenantId, url.searchParams.get("limit")))
    return ["/v1/events", tenantId]
  }
  json(res, 404, { title: "Not Found", status: 404 }, "application/problem+json")
  return ["unmatched", undefined]
}

const server = createServer((req, res) => {
  const started = performance.now()
  const id = requestId(req.headers["x-request-id"])
  res.setHeader("x-request-id", id)
  const url = new URL(req.url ?? "/", "http://localhost")
  handle(req, res, url).then(
    ([route, tenantId]) => {
      const durationMs = performance.now() - started
      observe(req.method ?? "GET", route, res.statusCode, durationMs / 1000)
      accessLog({
        requestId: id,
        method: req.method ?? "GET",
        route,
        path: url.pathname,
        status: res.statusCode,
        durationMs,
        tenantId,
        clientIp: req.socket.remoteAddress,
        userAgent: req.headers["user-agent"]
      })
    },
    () => {
      if (!res.headersSent) json(res, 500, { title: "Internal Server Error", status: 500 }, "application/problem+json")
    }
  )
})
server.keepAliveTimeout = 65_000
server.listen(port, "127.0.0.1", () => listening((server.address() as AddressInfo).port))
process.once("SIGTERM", () => server.close(() => process.exit(0)))
