import { Effect, Layer } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { AppConfig } from "../../services/AppConfig.ts"
import { DatabaseHealth } from "../../services/DatabaseHealth.ts"
import { Readiness } from "../../services/Readiness.ts"
import { Api } from "../api/Api.ts"
import { ServiceUnavailable } from "../api/Problems.ts"
import { Unhealthy } from "../api/SystemApi.ts"
import { contextFree } from "./ContextFree.ts"

/**
 * The probes. Their services are taken before the group is built, and the group is built context-free: a probe
 * request runs in the request's own context, with nothing merged into it.
 */
export const SystemHttp = Layer.unwrap(
  Effect.gen(function* () {
    const config = yield* AppConfig
    const database = yield* DatabaseHealth
    const readiness = yield* Readiness

    return HttpApiBuilder.group(Api, "system", (handlers) =>
      handlers
        .handle("livez", () => Effect.succeed({ status: "pass" as const }))
        .handle("readyz", () =>
          Effect.gen(function* () {
            if (readiness.isDraining()) {
              return yield* new ServiceUnavailable({ detail: "The server is shutting down." })
            }
            const db = yield* database.check
            if (db.status === "down") {
              return yield* new ServiceUnavailable({ detail: "The database is not answering." })
            }
            return { status: "ready" as const }
          })
        )
        .handle("healthz", () =>
          Effect.gen(function* () {
            const db = yield* database.check
            const report = {
              status: db.status === "up" ? ("pass" as const) : ("fail" as const),
              version: config.version,
              uptimeSeconds: Math.round(process.uptime() * 10) / 10,
              checks: { database: db }
            }
            return db.status === "up" ? report : yield* new Unhealthy(report)
          })
        )
    ).pipe(contextFree)
  })
)
