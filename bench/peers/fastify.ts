/** Fastify 5 doing codex-api's job for the benchmarked routes, with the usual plugins and the shared pieces. */
import rateLimitPlugin from "@fastify/rate-limit"
import Fastify from "fastify"
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

const app = Fastify({ logger: false, genReqId: (req) => requestId(req.headers["x-request-id"]) })
await app.register(rateLimitPlugin, { max: rateLimit.max, timeWindow: rateLimit.windowMs })

app.addHook("onRequest", async (request, reply) => {
  reply.header("x-request-id", request.id)
})
app.addHook("onResponse", async (request, reply) => {
  const route = request.routeOptions.url ?? "unmatched"
  observe(request.method, route, reply.statusCode, reply.elapsedTime / 1000)
  accessLog({
    requestId: request.id,
    method: request.method,
    route,
    path: request.url.split("?")[0] ?? "",
    status: reply.statusCode,
    durationMs: reply.elapsedTime,
    tenantId: (request as { tenantId?: string }).tenantId,
    clientIp: request.ip,
    userAgent: request.headers["user-agent"]
  })
})

app.get("/livez", async () => ({ status: "pass" }))
app.get("/metrics", async (_, reply) => reply.type(metricsContentType).send(await metricsText()))
app.get<{ Querystring: { limit?: string } }>("/v1/events", async (request, reply) => {
  const tenantId = await authenticate(request.headers.authorization)
  if (tenantId === undefined) return reply.code(401).type("application/problem+json").send(unauthorized)
  ;(request as { tenantId?: string }).tenantId = tenantId
  return listEvents(tenantId, request.query.limit)
})

const address = await app.listen({ port, host: "127.0.0.1" })
listening(Number(new URL(address).port))
process.once("SIGTERM", () => {
  app.close().then(() => process.exit(0))
})
