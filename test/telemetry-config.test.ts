import { ConfigProvider, Effect, Option, Tracer } from "effect"
import { assert, describe, it } from "vitest"
import { appConfig } from "../layers/AppConfigLive.ts"
import { sampleDecision } from "../layers/TracingLive.ts"
import type { TracingConfig } from "../services/AppConfig.ts"

/** The OTEL_* and observability variables, read through the real config. */
const parse = (env: Record<string, string>) =>
  Effect.runSync(Effect.result(appConfig.parse(ConfigProvider.fromEnv({ env }))))

const ok = (env: Record<string, string>) => {
  const result = parse(env)
  assert.strictEqual(result._tag, "Success", JSON.stringify(result))
  if (result._tag !== "Success") throw new Error("unreachable")
  return result.success
}

describe("telemetry configuration", () => {
  it("tracing is off without an endpoint; observability defaults", () => {
    const config = ok({})
    assert.isTrue(Option.isNone(config.tracing.tracesEndpoint))
    assert.strictEqual(config.tracing.serviceName, "codex-api")
    assert.strictEqual(config.tracing.sampler, "parentbased_always_on")
    assert.isTrue(config.accessLog)
    assert.isFalse(config.accessLogProbes)
    assert.isTrue(config.metricsEnabled)
    assert.isTrue(Option.isNone(config.metricsPort))
  })

  it("OTEL_EXPORTER_OTLP_ENDPOINT gets /v1/traces appended; the traces endpoint is used as is and wins", () => {
    assert.deepStrictEqual(
      ok({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" }).tracing.tracesEndpoint,
      Option.some("http://collector:4318/v1/traces")
    )
    assert.deepStrictEqual(
      ok({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/base/" }).tracing.tracesEndpoint,
      Option.some("http://collector:4318/base/v1/traces")
    )
    assert.deepStrictEqual(
      ok({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://other:9999/custom"
      }).tracing.tracesEndpoint,
      Option.some("http://other:9999/custom")
    )
    assert.strictEqual(parse({ OTEL_EXPORTER_OTLP_ENDPOINT: "not a url" })._tag, "Failure")
  })

  it("service name, resource attributes (percent-decoded), sampler and ratio", () => {
    const config = ok({
      OTEL_SERVICE_NAME: "codex-eu",
      OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=prod, team=core%20platform",
      OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
      OTEL_TRACES_SAMPLER_ARG: "0.25",
      METRICS_PORT: "9464",
      ACCESS_LOG_PROBES: "true"
    })
    assert.strictEqual(config.tracing.serviceName, "codex-eu")
    assert.deepStrictEqual(config.tracing.resourceAttributes, {
      "deployment.environment": "prod",
      team: "core platform"
    })
    assert.strictEqual(config.tracing.sampler, "parentbased_traceidratio")
    assert.strictEqual(config.tracing.samplerArg, 0.25)
    assert.deepStrictEqual(config.metricsPort, Option.some(9464))
    assert.isTrue(config.accessLogProbes)
    assert.strictEqual(parse({ OTEL_TRACES_SAMPLER: "sometimes" })._tag, "Failure")
    assert.strictEqual(parse({ OTEL_TRACES_SAMPLER_ARG: "1.5" })._tag, "Failure")
    assert.strictEqual(parse({ METRICS_PORT: "0" })._tag, "Failure")
  })

  it("samplers: roots by the sampler, local children follow their parent, remote parents per parentbased_*", () => {
    const decide = (sampler: TracingConfig["sampler"], samplerArg = 1) =>
      sampleDecision({ tracesEndpoint: Option.none(), serviceName: "x", resourceAttributes: {}, sampler, samplerArg })
    const remote = (sampled: boolean) =>
      Option.some(Tracer.externalSpan({ traceId: "a".repeat(32), spanId: "b".repeat(16), sampled }))
    assert.isTrue(decide("always_on")(Option.none()))
    assert.isFalse(decide("always_off")(Option.none()))
    assert.isFalse(decide("parentbased_always_on")(remote(false)))
    assert.isTrue(decide("parentbased_always_off")(remote(true)))
    assert.isTrue(decide("always_on")(remote(false)))
    assert.isFalse(decide("traceidratio", 0)(Option.none()))
    assert.isTrue(decide("traceidratio", 1)(Option.none()))
    const sampled = Array.from({ length: 4000 }, () => decide("parentbased_traceidratio", 0.25)(Option.none()))
    const ratio = sampled.filter(Boolean).length / sampled.length
    assert.isAbove(ratio, 0.18)
    assert.isBelow(ratio, 0.32)
  })
})
