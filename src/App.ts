import { Effect, Layer } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import * as NetAddress from "effect/net/NetAddress"
import type * as OtlpExporter from "effect/observability/OtlpExporter"
import { ApiKeyAuthLive } from "../layers/ApiKeyAuthLive.ts"
import { ApiKeysLive } from "../layers/ApiKeysLive.ts"
import { DatabaseLive } from "../layers/Database.ts"
import { DatabaseHealthLive } from "../layers/DatabaseHealthLive.ts"
import { DeliveriesLive } from "../layers/DeliveriesLive.ts"
import { DeliveryWakeupsLive } from "../layers/DeliveryWakeupsLive.ts"
import { DeliveryWorkerInServer } from "../layers/DeliveryWorkerLive.ts"
import { EndpointCircuitsLive } from "../layers/EndpointCircuitsLive.ts"
import { EndpointStatsLive } from "../layers/EndpointStatsLive.ts"
import { EndpointsLive } from "../layers/EndpointsLive.ts"
import { EventsLive } from "../layers/EventsLive.ts"
import { EventTypesLive } from "../layers/EventTypesLive.ts"
import {
  DatabaseShutdownLog,
  ExitAfterShutdownTimeout,
  ExitOnSecondSignal,
  GracefulShutdown
} from "../layers/GracefulShutdown.ts"
import { HttpServerLive } from "../layers/HttpServerLive.ts"
import { IdempotencyPurgeLive, IdempotencyStoreLive } from "../layers/IdempotencyStoreLive.ts"
import { MetricsLive } from "../layers/MetricsLive.ts"
import { MigrationsLive } from "../layers/Migrations.ts"
import { OutboxStatsLive } from "../layers/OutboxStatsLive.ts"
import { PortalSessionsLive } from "../layers/PortalSessionsLive.ts"
import { RateLimitLive } from "../layers/RateLimitLive.ts"
import { ReadinessLive } from "../layers/ReadinessLive.ts"
import { RetentionPurgeLive, RetentionPurgeLoopLive } from "../layers/RetentionPurgeLive.ts"
import { SecretBoxLive } from "../layers/SecretBoxLive.ts"
import { SecretReencryptionLive, SecretReencryptionPeriodicLive } from "../layers/SecretReencryption.ts"
import { TenantDeletionLive } from "../layers/TenantDeletionLive.ts"
import { TenantsLive } from "../layers/TenantsLive.ts"
import { TracingLive } from "../layers/TracingLive.ts"
import { UrlPolicyLive } from "../layers/UrlPolicyLive.ts"
import type { AppConfig } from "../services/AppConfig.ts"
import type { Metrics } from "../services/Metrics.ts"
import type { UrlPolicy } from "../services/UrlPolicy.ts"
import { Foundation } from "./Foundation.ts"
import { MetricsServer } from "./http/MetricsServer.ts"
import { ApiKeyAuthObserved, RouteTemplate } from "./http/RequestContext.ts"
import { Routes } from "./http/Routes.ts"
import { DemoSeedLive } from "./seed/DemoSeed.ts"

/**
 * Logged once the routes are mounted, i.e. when the server answers requests. With `PORT=0` this line is the only
 * place the bound port shows up.
 */
const ListeningLog: Layer.Layer<never, never, HttpServer.HttpServer> = Layer.effectDiscard(
  Effect.gen(function* () {
    const { address } = yield* HttpServer.HttpServer
    const where = NetAddress.isUnixPathAddress(address)
      ? { path: address.path }
      : { host: NetAddress.formatIp(address.address), port: address.port }
    yield* Effect.logInfo("listening").pipe(Effect.annotateLogs(where))
  })
)

/**
 * The router's configuration, read by the router and by what matches paths the same way (the 405 answer, the rate
 * limiter's route classes). A path parameter longer than `maxParamLength` matches no route (find-my-way's default is
 * 100): an event-type name may be 128 characters (`/v1/event-types/{name}`).
 */
const routerConfig = { maxParamLength: 128 }

export interface ServerOptions {
  /** The metrics registry (default: MetricsLive, with the process metrics). */
  readonly metrics?: Layer.Layer<Metrics>
  /**
   * Tracing (default: TracingLive, on when an OTLP endpoint is configured). Whatever tracer it provides is used by
   * every layer of the server, and it is released last, after the drain, so the last spans are flushed.
   */
  readonly tracing?: Layer.Layer<OtlpExporter.Flusher, never, AppConfig>
  /**
   * The webhook URL policy of the API and the in-process worker (default: UrlPolicyLive, on the system resolver).
   * Tests pass one on a scripted resolver, so names resolve as the test says without any DNS query.
   */
  readonly urlPolicy?: Layer.Layer<UrlPolicy, never, AppConfig>
}

/**
 * The server, given its configuration and log sink. Layers are built bottom-up and torn down in reverse: telemetry →
 * database → migrations and seed → HTTP listener → draining. So on shutdown readiness flips first, then the listener
 * closes and in-flight requests finish, then leftover connections are cut, the database pool closes, and the spans
 * still buffered are flushed last.
 *
 * `extraRoutes` lets tests mount routes of their own (a slow handler, say) on the real server.
 */
export const makeServer = <E = never, R = never>(
  extraRoutes: Layer.Layer<never, E, R> = Layer.empty as Layer.Layer<never, E, R>,
  options: ServerOptions = {}
) => {
  // Migrations finish before anything else touches the database; then the re-encryption sweep seals what an older
  // version left in plaintext (or under a retired key), before anything is served.
  const MigratedDatabase = SecretReencryptionLive.pipe(
    Layer.provideMerge(MigrationsLive.pipe(Layer.provideMerge(DatabaseLive)))
  )
  const Database = Layer.mergeAll(
    DatabaseHealthLive,
    OutboxStatsLive,
    DemoSeedLive,
    DatabaseShutdownLog,
    IdempotencyPurge,
    RetentionPurgeLoop,
    SecretReencryptionPeriodicLive()
  ).pipe(Layer.provideMerge(MigratedDatabase))
  const Http = HttpRouter.serve(
    Layer.mergeAll(Routes.pipe(Layer.provide(ApiServices)), extraRoutes.pipe(Layer.provide(RouteTemplate))),
    {
      disableLogger: true,
      disableListenLog: true
    }
  ).pipe(Layer.provideMerge(HttpServerLive), Layer.provide(Layer.succeed(HttpRouter.RouterConfig)(routerConfig)))
  const Telemetry = Layer.merge(options.metrics ?? MetricsLive, options.tracing ?? TracingLive)
  // The webhook delivery worker (unless DELIVERY_WORKER=false) stops and releases its leases before the pool closes.
  // It and the API (endpoint health) share one set of endpoint circuits, and one DeliveryWakeups: what the API queues
  // wakes the worker once committed (on the embedded database, which cannot LISTEN, nothing else would but the poll).
  return Layer.mergeAll(GracefulShutdown, ListeningLog, MetricsServer, DeliveryWorkerInServer).pipe(
    Layer.provideMerge(Http),
    Layer.provide(DeliveryWakeupsLive),
    Layer.provide(Database),
    Layer.provide(options.urlPolicy ?? UrlPolicyLive),
    Layer.provide(EndpointCircuitsLive),
    Layer.provide(ReadinessLive),
    // One SecretBox (ENCRYPTION_KEYS) for the sweep, the API and the delivery worker.
    Layer.provide(SecretBoxLive),
    Layer.provide(Telemetry)
  )
}

/**
 * The services the API's handlers and middleware call. One API key cache for the rate limiter and TenantAuth: the
 * limiter's lookup is the one TenantAuth reuses.
 */
const ApiServices = Layer.mergeAll(
  TenantsLive,
  ApiKeysLive,
  TenantDeletionLive,
  EndpointsLive,
  EndpointStatsLive,
  EventsLive,
  EventTypesLive,
  DeliveriesLive,
  IdempotencyStoreLive,
  RateLimitLive,
  PortalSessionsLive
).pipe(Layer.provideMerge(ApiKeyAuthObserved.pipe(Layer.provide(ApiKeyAuthLive))))

/** The background fiber removing what is past retention (every RETENTION_PURGE_INTERVAL, in batches), for the server's lifetime. */
const RetentionPurgeLoop = RetentionPurgeLoopLive.pipe(Layer.provide(RetentionPurgeLive()))

/** The background fiber purging expired idempotency keys (every minute, in batches), for the server's lifetime. */
const IdempotencyPurge = IdempotencyPurgeLive().pipe(Layer.provide(IdempotencyStoreLive))

/**
 * The process: the server, plus what only a real process does on shutdown (exit at once on a second signal, and
 * exit anyway when the shutdown overruns its deadline). `extraRoutes` is for test entry points.
 */
export const makeMain = <E = never, R = never>(
  extraRoutes: Layer.Layer<never, E, R> = Layer.empty as Layer.Layer<never, E, R>
) =>
  Layer.mergeAll(makeServer(extraRoutes), ExitOnSecondSignal, ExitAfterShutdownTimeout).pipe(Layer.provide(Foundation))

export const Main = makeMain()
