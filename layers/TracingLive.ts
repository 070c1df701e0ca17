import { type Duration, Effect, Layer, Option, type Scope, Tracer } from "effect"
import { FetchHttpClient, type HttpClient, HttpMiddleware } from "effect/http"
import * as OtlpExporter from "effect/observability/OtlpExporter"
import type * as OtlpResource from "effect/observability/OtlpResource"
import * as OtlpSerializationLayers from "effect/observability/OtlpSerialization"
import { OtlpSerialization } from "effect/observability/OtlpSerialization"
import * as OtlpTracer from "effect/observability/OtlpTracer"
import { AppConfig, type TracingConfig } from "../services/AppConfig.ts"
import { resolvedClientAttribute } from "../src/domain/TraceContext.ts"

/**
 * Tracing exports Effect's own spans over OTLP/HTTP (JSON) with `effect/observability` — no OpenTelemetry SDK. Chosen
 * by measurement (bench/observability.ts; README "What it costs"): on the `GET /livez` hot path, the SDK through
 * `@effect/opentelemetry` cost as much with its sampler set to `always_off` as this exporter does sampling every
 * request, and about 40% more throughput was lost with both at 100%. The SDK's extras that matter here (samplers, the
 * span status convention) are small and live below.
 */

/**
 * `OTEL_TRACES_SAMPLER` on Effect spans. A span under a local parent always follows it, so a trace is kept or dropped
 * whole. Under a remote parent (an incoming `traceparent`) the `parentbased_*` samplers follow its sampled flag; roots
 * (and remote parents with the non-parent-based samplers) get the sampler's own decision.
 */
export const sampleDecision =
  (config: TracingConfig) =>
  (parent: Option.Option<Tracer.AnySpan>): boolean => {
    if (Option.isSome(parent)) {
      if (parent.value._tag === "Span") return parent.value.sampled
      if (config.sampler.startsWith("parentbased_")) return parent.value.sampled
    }
    switch (config.sampler) {
      case "always_on":
      case "parentbased_always_on":
        return true
      case "always_off":
      case "parentbased_always_off":
        return false
      case "traceidratio":
      case "parentbased_traceidratio":
        return Math.random() < config.samplerArg
    }
  }

/** A tracer deciding `sampled` by the configured sampler; unsampled spans are never exported. */
const withSampler = (inner: Tracer.Tracer, config: TracingConfig): Tracer.Tracer => {
  const decide = sampleDecision(config)
  return Tracer.make({
    ...inner,
    span: (options) => inner.span({ ...options, sampled: options.sampled && decide(options.parent) })
  })
}

/** OTLP span kind and status codes (opentelemetry-proto). */
const spanKindServer = 2
const statusOk = 1
const statusUnset = 0

type KeyValue = OtlpResource.KeyValue

/** `client.address` := the resolved client, the peer moved to `network.peer.address` (OTel HTTP server conventions). */
const clientAddresses = (attributes: Array<KeyValue>): Array<KeyValue> => {
  const resolved = attributes.find((a) => a.key === resolvedClientAttribute)
  if (resolved === undefined) return attributes
  const peer = attributes.find((a) => a.key === "client.address")
  return [
    ...attributes.filter((a) => a.key !== resolvedClientAttribute && a.key !== "client.address"),
    { key: "client.address", value: resolved.value },
    ...(peer === undefined ? [] : [{ key: "network.peer.address", value: peer.value }])
  ]
}

/**
 * Server spans as the HTTP semantic conventions want them, fixed where Effect writes them otherwise: the status left
 * unset for 1xx-4xx (Effect marks every span that ended without failure `OK`; only 5xx, which Effect already fails,
 * is an error), and `client.address` the client behind a trusted proxy (see `resolvedClientAttribute`).
 */
const ServerSpanConventions: Layer.Layer<OtlpSerialization> = Layer.effect(
  OtlpSerialization,
  Effect.gen(function* () {
    const json = yield* OtlpSerialization
    return {
      ...json,
      traces: (data) =>
        json.traces({
          resourceSpans: data.resourceSpans.map((rs) => ({
            ...rs,
            scopeSpans: rs.scopeSpans.map((ss) => ({
              ...ss,
              spans: ss.spans.map((span) =>
                span.kind === spanKindServer
                  ? {
                      ...span,
                      attributes: clientAddresses(span.attributes),
                      status: span.status.code === statusOk ? { code: statusUnset } : span.status
                    }
                  : span
              )
            }))
          }))
        })
    }
  })
).pipe(Layer.provide(OtlpSerializationLayers.layerJson))

export interface TracingOptions {
  /** How often buffered spans are sent (default 5 s); shutdown sends the rest at once. */
  readonly exportInterval?: Duration.Input
}

/**
 * The OTLP tracer for `url`, with the resource and sampler of the configuration, given an HTTP client. Spans are
 * batched and sent every `exportInterval`; when the application's scope closes the rest is flushed (bounded by 5 s),
 * after the HTTP server drained, so the last requests' spans are not lost.
 */
export const tracingWith = (
  url: string,
  config: TracingConfig,
  serviceVersion: string,
  options: TracingOptions = {}
): Layer.Layer<OtlpExporter.Flusher, never, HttpClient.HttpClient> =>
  Layer.effect(
    Tracer.Tracer,
    Effect.map(
      OtlpTracer.make({
        url,
        resource: { serviceName: config.serviceName, serviceVersion, attributes: { ...config.resourceAttributes } },
        exportInterval: options.exportInterval ?? "5 seconds",
        shutdownTimeout: "5 seconds"
      }),
      (inner) => withSampler(inner, config)
    ) satisfies Effect.Effect<
      Tracer.Tracer,
      never,
      OtlpExporter.Flusher | OtlpSerialization | HttpClient.HttpClient | Scope.Scope
    >
  ).pipe(Layer.provideMerge(OtlpExporter.layerFlusher), Layer.provide(ServerSpanConventions))

/** Server spans off: Effect's HTTP tracer middleware does nothing per request, and nothing is exported. */
export const TracingDisabled: Layer.Layer<OtlpExporter.Flusher> = Layer.merge(
  Layer.succeed(HttpMiddleware.TracerDisabledWhen, () => true),
  OtlpExporter.layerFlusher
)

/** Tracing when an OTLP endpoint is configured (see AppConfig), exporting through fetch; otherwise TracingDisabled. */
export const TracingLive: Layer.Layer<OtlpExporter.Flusher, never, AppConfig> = Layer.unwrap(
  Effect.gen(function* () {
    const config = yield* AppConfig
    const tracing = config.tracing
    if (Option.isNone(tracing.tracesEndpoint)) return TracingDisabled
    return tracingWith(tracing.tracesEndpoint.value, tracing, config.version).pipe(Layer.provide(FetchHttpClient.layer))
  })
)
