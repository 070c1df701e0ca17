import { Duration, Layer, Option, Redacted } from "effect"
import { httpServerDefaults } from "../../layers/AppConfigLive.ts"
import {
  AppConfig,
  type AppConfigShape,
  type EncryptionConfig,
  type RateLimitConfig
} from "../../services/AppConfig.ts"
import { defaultAllowedPorts } from "../../src/domain/AllowedPorts.ts"
import type { EncryptionKeyList } from "../../src/domain/EncryptionKeys.ts"
import { packageVersion } from "../../src/domain/PackageInfo.ts"

/** The configuration of tests (the production parser's output is in layers/AppConfigLive.ts). */

/**
 * Rate limiting in tests: on, as in production, but with a quota no other suite reaches (rate-limit tests set small
 * ones).
 */
export const testRateLimit: RateLimitConfig = {
  enabled: true,
  max: 1_000_000,
  window: Duration.minutes(15),
  store: "memory",
  redisUrl: Option.none(),
  onStoreError: "allow",
  trustProxy: { _tag: "None" }
}

/**
 * The keys of the test configuration: one fixed test key, `test` (tests of key rotation build their own). Not the
 * development key, so tests see the configured path.
 */
const testKeyBase64 = "CxVIGq9xNo4r7klRnZxH9MYQxJXj5vrlT8SIBw3TIcc="
export const testEncryptionKeys: EncryptionKeyList = [
  { id: "test", material: new Uint8Array(Buffer.from(testKeyBase64, "base64")) }
]

/** The same key as an `ENCRYPTION_KEYS` value, for the processes tests start beside an in-process server. */
export const testEncryptionKeysEnv = `test:${testKeyBase64}`

/** `EncryptionConfig` for tests from the given keys (default: the test key). */
export const testEncryption = (keys: EncryptionKeyList = testEncryptionKeys): EncryptionConfig => ({
  keys: Redacted.make(keys),
  developmentDefault: false
})

/**
 * A fixed configuration for tests, with the given overrides: the production defaults, except where a test needs
 * otherwise (development's open admin API, loopback and free ports, private receivers, shorter times, a quota no
 * suite reaches). test/production-defaults.test.ts lists each departure with its reason and fails on any other.
 */
export const appConfigTest = (overrides: Partial<AppConfigShape> = {}): Layer.Layer<AppConfig> =>
  Layer.succeed(AppConfig, {
    appEnv: "development",
    version: packageVersion,
    host: "127.0.0.1",
    port: 0,
    databaseUrl: Option.none(),
    pgliteDir: "memory://",
    databasePoolMax: 4,
    logLevel: "Info",
    logFormat: "json",
    shutdownTimeout: Duration.seconds(5),
    shutdownDelay: Duration.zero,
    adminToken: Option.none(),
    corsOrigins: Option.none(),
    bodyLimitBytes: 256 * 1024,
    // The production values: a test that needs them sooner shortens them.
    http: httpServerDefaults,
    // The tests' receivers listen on 127.0.0.1 (production: false, the SSRF guard on).
    webhookAllowPrivateNetworks: true,
    webhookAllowedPorts: defaultAllowedPorts,
    accessLog: true,
    accessLogProbes: false,
    metricsEnabled: true,
    metricsPort: Option.none(),
    tracing: {
      tracesEndpoint: Option.none(),
      serviceName: "codex-api",
      resourceAttributes: {},
      sampler: "parentbased_always_on",
      samplerArg: 1
    },
    // Off in tests unless a test turns it on: most tests register endpoints that must never be called.
    delivery: {
      worker: false,
      timeout: Duration.seconds(15),
      maxAttempts: 5,
      backoffBase: Duration.millis(50),
      backoffMax: Duration.millis(200),
      concurrency: 32,
      endpointConcurrency: 4,
      tenantConcurrency: 16,
      pollInterval: Duration.seconds(1),
      leaseMargin: Duration.seconds(30),
      disableAfter: Duration.days(5)
    },
    redisUrl: Option.none(),
    breaker: {
      failureThreshold: 5,
      openBase: Duration.seconds(30),
      openMax: Duration.minutes(10),
      redisPrefix: "codex:circuit:"
    },
    idempotency: { ttl: Duration.minutes(5), lockTimeout: Duration.seconds(60), required: false },
    retention: { keep: Duration.days(30), purgeEvery: Duration.minutes(1) },
    rateLimit: testRateLimit,
    encryption: testEncryption(),
    publicUrl: Option.none(),
    portal: { sessionTtl: Duration.hours(1), frameAncestors: ["'none'"] },
    ...overrides
  })
