import { Effect, Layer, Option } from "effect"
import { HttpClient, HttpClientResponse } from "effect/http"
import { tracingWith } from "../../layers/TracingLive.ts"
import { AppConfig, type TracingConfig } from "../../services/AppConfig.ts"

/** Traces kept in memory: the production tracer, its OTLP/HTTP JSON exports captured instead of sent. */

export const baseTracing: TracingConfig = {
  tracesEndpoint: Option.none(),
  serviceName: "codex-api-test",
  resourceAttributes: { "deployment.environment": "test" },
  sampler: "parentbased_always_on",
  samplerArg: 1
}

export interface OtlpSpan {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId?: string
  readonly name: string
  readonly kind: number
  readonly status: { readonly code: number }
  readonly startTimeUnixNano?: string
  readonly endTimeUnixNano?: string
  readonly attributes?: ReadonlyArray<{ readonly key: string; readonly value: Record<string, unknown> }>
}
export interface OtlpRequest {
  readonly resourceSpans: ReadonlyArray<{
    readonly resource?: { readonly attributes?: OtlpSpan["attributes"] }
    readonly scopeSpans: ReadonlyArray<{ readonly spans: ReadonlyArray<OtlpSpan> }>
  }>
}
export const spansOf = (requests: ReadonlyArray<OtlpRequest>): ReadonlyArray<OtlpSpan> =>
  requests.flatMap((r) => r.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((s) => s.spans)))

/** The production tracer, exporting every 20 ms through an HTTP client that keeps the OTLP JSON bodies in memory. */
export const inMemoryTracing = (requests: Array<OtlpRequest>) => {
  const client = HttpClient.make((request) => {
    if (request.body._tag === "Uint8Array") {
      requests.push(JSON.parse(new TextDecoder().decode(request.body.body)) as OtlpRequest)
    }
    return Effect.succeed(HttpClientResponse.fromWeb(request, new Response("{}", { status: 200 })))
  })
  return Layer.unwrap(
    Effect.gen(function* () {
      const config = yield* AppConfig
      return tracingWith("http://in-memory/v1/traces", baseTracing, config.version, { exportInterval: "20 millis" })
    })
  ).pipe(Layer.provide(Layer.succeed(HttpClient.HttpClient, client)))
}
