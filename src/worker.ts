import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Layer } from "effect"
import { DatabaseLive } from "../layers/Database.ts"
import { DeliveryWakeupsLive } from "../layers/DeliveryWakeupsLive.ts"
import { DeliveryWorkerDefault } from "../layers/DeliveryWorkerLive.ts"
import { EndpointCircuitsLive } from "../layers/EndpointCircuitsLive.ts"
import { ExitAfterShutdownTimeout, ExitOnSecondSignal } from "../layers/GracefulShutdown.ts"
import { MetricsLive } from "../layers/MetricsLive.ts"
import { MigrationsLive } from "../layers/Migrations.ts"
import { OutboxStatsLive } from "../layers/OutboxStatsLive.ts"
import { SecretBoxLive } from "../layers/SecretBoxLive.ts"
import { SecretReencryptionLive } from "../layers/SecretReencryption.ts"
import { Foundation } from "./Foundation.ts"
import { MetricsServer } from "./http/MetricsServer.ts"
import { exitCodeTeardown } from "./StartupError.ts"

/**
 * `npm run worker`: the webhook delivery worker alone, without the HTTP API (run the API with `DELIVERY_WORKER=false`
 * and as many of these as needed: they share the work through `FOR UPDATE SKIP LOCKED`). It applies pending
 * migrations first (serialised under a lock, so starting beside the API is safe), then the re-encryption sweep (rows
 * taken with SKIP LOCKED, so it shares the work too). On SIGTERM it stops claiming, lets in-flight sends finish and
 * releases its leases, then exits 0.
 */
const Worker = Layer.mergeAll(
  // Nothing in this process queues deliveries: the API's processes wake it with NOTIFY (or the poll does).
  DeliveryWorkerDefault.pipe(Layer.provide(DeliveryWakeupsLive)),
  ExitOnSecondSignal,
  ExitAfterShutdownTimeout
)

/**
 * `/metrics` on METRICS_PORT when it is set (a worker has no API port): its delivery attempts, lag and circuits are
 * counted here, not in the API's registry.
 */
const WorkerMetrics = MetricsServer.pipe(Layer.provide(OutboxStatsLive))

Layer.launch(
  Layer.merge(Worker, WorkerMetrics).pipe(
    Layer.provide(
      SecretReencryptionLive.pipe(Layer.provideMerge(MigrationsLive.pipe(Layer.provideMerge(DatabaseLive))))
    ),
    Layer.provide(EndpointCircuitsLive),
    Layer.provide(SecretBoxLive),
    Layer.provide(MetricsLive),
    Layer.provide(Foundation)
  )
).pipe(NodeRuntime.runMain({ disableErrorReporting: true, teardown: exitCodeTeardown }))
