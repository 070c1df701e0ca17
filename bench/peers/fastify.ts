/** Fastify 5 doing codex-api's job for the benchmarked routes, with the usual plugins and the shared pieces. */
import rateLimitPlugin from "@fastify/rate-limit"
import Fastify from "fastify"
import * as peer from "./common.ts"

const app = Fastify({ logger: false, genReqId: (req) => peer.requestId(req.headers["x-request-id"]) })
await app.register(rateLimitPlugin, { max: peer.rateLimit.max, timeWindow: peer.rateLimit.windowMs })

app.addHook("onRequest", async (request, reply) => {
  reply.header("x-request-id", request.id)
})
app.addHook("onResponse", async (request, reply) => {
  const route = request.routeOptions.url ?? "unmatched"
  peer.observe(request.method, route, reply.statusCode, reply.elapsedTime / 1000)
  peer.accessLog({
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
app.get("/metrics", async (_, reply) => reply.type(peer.metricsContentType).send(await peer.metricsText()))
app.get<{ Querystring: { limit?: string } }>("/v1/events", async (request, reply) => {
  const tenantId = await peer.authenticate(request.headers.authorization)
  if (tenantId === undefined) return reply.code(401).type("application/problem+json").send(peer.unauthorized)
  ;(request as { tenantId?: string }).tenantId = tenantId
  return peer.listEvents(tenantId, request.query.limit)
})

const address = await app.listen({ port: peer.port, host: "127.0.0.1" })
peer.listening(Number(new URL(address).port))
process.once("SIGTERM", () => {
  app.close().then(() => process.exit(0))
})
