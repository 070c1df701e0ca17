import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Layer } from "effect"
import { DatabaseLive } from "../layers/Database.ts"
import { runMigrations } from "../layers/Migrations.ts"
import { SecretBoxLive } from "../layers/SecretBoxLive.ts"
import { reencryptSecrets } from "../layers/SecretReencryption.ts"
import { Foundation } from "./Foundation.ts"
import { exitCodeTeardown } from "./StartupError.ts"

/**
 * `npm run migrate`: apply pending migrations to the configured database, then run the re-encryption sweep (seal
 * plaintext secrets, re-seal values under retired keys), then exit.
 */
runMigrations.pipe(
  Effect.andThen(reencryptSecrets()),
  Effect.asVoid,
  Effect.provide(Layer.mergeAll(DatabaseLive, SecretBoxLive).pipe(Layer.provideMerge(Foundation))),
  NodeRuntime.runMain({ disableErrorReporting: true, teardown: exitCodeTeardown })
)
