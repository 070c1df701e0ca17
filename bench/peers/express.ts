/** Express 5 doing codex-api's job for the benchmarked routes, with the usual middleware and the shared pieces. */
import type { AddressInfo } from "node:net"
import express from "express"
import { rateLimit as rateLimiter } from "express-rate-limit"
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

const app = express()
app.disable("x-powered-by")
app.use(
  rateLimiter({ windowMs: rateLimit.windowMs, limit: rateLimit.max, standardHeaders: "draft-8", legacyHeaders: false })
)
app.use((req, res, next) => {
  const started = performance.now()
  const id = requestId(req.headers["x-request-id"])
  res.setHeader("x-request-id", id)
  res.on("finish", () => {
    const durationMs = performance.now() - started
    const route = typeof req.route?.path === "string" ? req.route.path : "unmatched"
    observe(req.method, route, res.statusCode, durationMs / 1000)
    accessLog({
      requestId: id,
      method: req.method,
      route,
      path: req.path,
      status: res.statusCode,
      durationMs,
      tenantId: res.locals.tenantId as string | undefined,
      clientIp: req.ip,
      userAgent: req.headers["user-agent"]
    })
  })
  next()
})

app.get("/livez", (_, res) => {
  res.json({ status: "pass" })
})
app.get("/metrics", async (_, res) => {
  res.type(metricsContentType).send(await metricsText())
})
app.get("/v1/events", async (req, res) => {
  const tenantId = await authenticate(req.headers.authorization)
  if (tenantId === undefined) {
    res.status(401).type("application/problem+json").send(JSON.stringify(unauthorized))
    return
  }
  res.locals.tenantId = tenantId
  res.json(await listEvents(tenantId, req.query.limit))
})

const server = app.listen(port, "127.0.0.1", () => listening((server.address() as AddressInfo).port))
server.keepAliveTimeout = 65_000
process.once("SIGTERM", () => server.close(() => process.exit(0)))
