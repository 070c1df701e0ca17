/**
 * Generated requests for the drill's fuzz scenario: methods, paths (real routes, ids of every shape), query strings,
 * headers and bodies — valid, malformed, oversized, hostile. Driven by the caller's seeded `random`, so a run repeats.
 */

type Random = () => number

const pick = <A>(random: Random, values: ReadonlyArray<A>): A => values[Math.floor(random() * values.length)] as A

const ids = [
  "evt_01M8SYFK8J25WHEQ67KYDBRRTG",
  "ep_nope",
  "dlv_",
  "ten_%00",
  "../../etc/passwd",
  "%E0%A4%A",
  "0",
  "-1",
  "a".repeat(300)
]
const paths = [
  "/v1/events",
  "/v1/events/:id",
  "/v1/events/:id/deliveries",
  "/v1/endpoints",
  "/v1/endpoints/:id",
  "/v1/endpoints/:id/secret",
  "/v1/endpoints/:id/secret/rotate",
  "/v1/endpoints/:id/deliveries",
  "/v1/endpoints/:id/recover",
  "/v1/deliveries/:id",
  "/v1/deliveries/:id/retry",
  "/admin/tenants",
  "/admin/tenants/:id",
  "/admin/api-keys/:id",
  "/livez",
  "/readyz",
  "/healthz",
  "/metrics",
  "/openapi.json",
  "/nope",
  "//v1//events",
  "/v1/events%2F..%2F"
]
const queries = [
  "",
  "?limit=20",
  "?limit=0",
  "?limit=-1",
  "?limit=1e9",
  "?cursor=%00",
  "?cursor=evt_x&limit=abc",
  "?status=lost",
  "?type=a&type=b",
  `?q=${"x".repeat(5000)}`
]
const methods = ["GET", "POST", "PATCH", "DELETE", "PUT", "OPTIONS", "HEAD"]
const contentTypes = [
  "application/json",
  "text/plain",
  "application/x-www-form-urlencoded",
  "application/json; charset=latin1",
  ""
]

const deep = (n: number) => `${"[".repeat(n)}${"]".repeat(n)}`
const bodies = (random: Random): string => {
  switch (Math.floor(random() * 12)) {
    case 0:
      return JSON.stringify({ type: "order.created", data: { orderId: "o_1", n: random() } })
    case 1:
      return JSON.stringify({ url: "http://127.0.0.1:9999/hook", eventTypes: ["order.*"] })
    case 2:
      return "{not json"
    case 3:
      return JSON.stringify({ type: "x", data: { s: "\u0000\ud800" } })
    case 4:
      return JSON.stringify({ type: "x", data: JSON.parse(`{"a":${deep(200)}}`) as unknown })
    case 5:
      return "x".repeat(300 * 1024)
    case 6:
      return JSON.stringify({ name: "t".repeat(5000) })
    case 7:
      return JSON.stringify({ since: "2026-02-30T00:00:00Z" })
    case 8:
      return JSON.stringify({ __proto__: { polluted: true }, type: "a", data: {} })
    case 9:
      return JSON.stringify({ enabled: "yes", url: "javascript:alert(1)" })
    case 10:
      return JSON.stringify([1, 2, 3])
    default:
      return ""
  }
}

export const fuzzRequest = (random: Random, apiKey: string): { readonly path: string; readonly init: RequestInit } => {
  const method = pick(random, methods)
  const path =
    pick(random, paths).replace(":id", encodeURIComponent(pick(random, ids)).replaceAll("%25", "%")) +
    pick(random, queries)
  const headers: Record<string, string> = {}
  const auth = random()
  if (auth < 0.6) headers.authorization = `Bearer ${apiKey}`
  else if (auth < 0.8)
    headers.authorization = pick(random, [
      "Bearer ",
      "Bearer ck_nope",
      "Basic Zm9vOmJhcg==",
      `Bearer ${"x".repeat(4000)}`
    ])
  if (random() < 0.3)
    headers["idempotency-key"] = pick(random, ["k1", '"quoted"', "", "spaces are bad", "x".repeat(300)])
  if (random() < 0.2) headers["x-request-id"] = pick(random, ["ok-1", "bad id", "x".repeat(200)])
  const contentType = pick(random, contentTypes)
  if (contentType !== "") headers["content-type"] = contentType
  const init: RequestInit = { method, headers }
  if (method !== "GET" && method !== "HEAD" && method !== "OPTIONS") init.body = bodies(random)
  return { path, init }
}
