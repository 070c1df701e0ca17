import { Effect, Layer, Schema } from "effect"
import { HttpRouter, HttpServerRespondable, HttpServerResponse } from "effect/http"
import { AppConfig } from "../../services/AppConfig.ts"
import { DatabaseHealth } from "../../services/DatabaseHealth.ts"
import { Readiness } from "../../services/Readiness.ts"
import { ServiceUnavailable } from "../api/Problems.ts"
import { Health, Liveness, Readiness as ReadinessBody } from "../api/SystemApi.ts"
import { RouteTemplate } from "./RequestContext.ts"

/**
 * The probes (contract: SystemApi, documented in /openapi.json and used by the typed client), served as plain router
 * routes rather than HttpApi handlers. An HttpApi group merges the context it was built in into every request it
 * serves, which copies the request's whole context and rebuilds the fiber's cached references: ~15-25% of a probe's
 * throughput here, paid on every probe of every orchestrator. The probes decode nothing, so the HttpApi machinery
 * would do nothing else for them; their bodies are encoded with the contract's schemas and their problems are the
 * contract's problem types, so the answers are the same bytes as before.
 */
export const SystemRoutes: Layer.Layer<never, never, HttpRouter.HttpRouter | AppConfig | DatabaseHealth | Readiness> =
  Layer.unwrap(
    Effect.gen(function* () {
      const config = yield* AppConfig
      const database = yield* DatabaseHealth
      const readiness = yield* Readiness
      const problem = (detail: string) => HttpServerRespondable.toResponse(new ServiceUnavailable({ detail }))

      /** A body of the contract, encoded by its schema, as HttpApi answers it (a failure is a bug: a defect). */
      const encoded = <A, I>(schema: Schema.Codec<A, I>, value: A, status = 200) =>
        Schema.encodeEffect(schema)(value).pipe(
          Effect.flatMap((body) => HttpServerResponse.json(body, { status })),
          Effect.orDie
        )
      // Immutable: one response serves every liveness probe.
      const live = yield* encoded(Liveness, { status: "pass" })
      const ready = yield* encoded(ReadinessBody, { status: "ready" })

      const readyz = Effect.suspend(() => {
        if (readiness.isDraining()) return problem("The server is shutting down.")
        return Effect.flatMap(database.check, (db) =>
          db.status === "down" ? problem("The database is not answering.") : Effect.succeed(ready)
        )
      })

      // 503 with the same body shape as 200 (the contract's Unhealthy), so dashboards can read which check failed.
      const healthz = Effect.flatMap(database.check, (db) =>
        encoded(
          Health,
          {
            status: db.status === "up" ? "pass" : "fail",
            version: config.version,
            uptimeSeconds: Math.round(process.uptime() * 10) / 10,
            checks: { database: db }
          },
          db.status === "up" ? 200 : 503
        )
      )

      return Layer.mergeAll(
        HttpRouter.add("GET", "/livez", live),
        HttpRouter.add("GET", "/readyz", readyz),
        HttpRouter.add("GET", "/healthz", healthz)
      ).pipe(Layer.provide(RouteTemplate))
    })
  )
