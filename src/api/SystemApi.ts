import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
import { ServiceUnavailable } from "./Problems.ts"

/** Status words from the IETF health-check draft (draft-inadarei-api-health-check). */
const CheckStatus = Schema.Literals(["pass", "fail"])

export const Liveness = Schema.Struct({
  status: Schema.Literal("pass").annotate({ description: "Always `pass`: the process is up and serving HTTP." })
}).annotate({ identifier: "Liveness" })

export const Readiness = Schema.Struct({
  status: Schema.Literal("ready").annotate({ description: "The database answers and the server is not draining." })
}).annotate({ identifier: "Readiness" })

const healthFields = {
  status: CheckStatus.annotate({ description: "`pass` when every check passes, else `fail`.", examples: ["pass"] }),
  version: Schema.String.annotate({ description: "The running codex-api version.", examples: ["0.1.0"] }),
  uptimeSeconds: Schema.Number.annotate({ description: "Seconds since the process started.", examples: [42.5] }),
  checks: Schema.Struct({
    database: Schema.Struct({
      status: Schema.Literals(["up", "down"]),
      latencyMs: Schema.Number.annotate({ description: "Round trip of the probe query (`SELECT 1`) in ms." })
    })
  })
}

export const Health = Schema.Struct(healthFields).annotate({ identifier: "Health" })

/** `/healthz` answers 503 with the same body shape as 200, so dashboards can read which check failed. */
export class Unhealthy extends Schema.Error<Unhealthy>("Unhealthy")(healthFields, {
  httpApiStatus: 503,
  identifier: "Unhealthy",
  description: "At least one check failed."
}) {}

/** Probes for orchestrators and operators. Never authenticated, never rate limited. */
export class SystemApi extends HttpApiGroup.make("system", { topLevel: true })
  .add(
    HttpApiEndpoint.get("livez", "/livez", { success: Liveness }).annotateMerge(
      OpenApi.annotations({
        summary: "Liveness probe",
        description: "200 while the process runs. Never touches the database: restart the process only if this fails."
      })
    ),
    HttpApiEndpoint.get("readyz", "/readyz", { success: Readiness, error: ServiceUnavailable }).annotateMerge(
      OpenApi.annotations({
        summary: "Readiness probe",
        description:
          "200 when the database answers and the server is not shutting down; 503 otherwise (route no traffic here)."
      })
    ),
    HttpApiEndpoint.get("healthz", "/healthz", { success: Health, error: Unhealthy }).annotateMerge(
      OpenApi.annotations({
        summary: "Health report",
        description: "Version, uptime and the status of each dependency. 503 when a dependency check fails."
      })
    )
  )
  .annotateMerge(OpenApi.annotations({ title: "System", description: "Liveness, readiness and health." })) {}
