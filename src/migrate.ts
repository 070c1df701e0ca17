import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Layer } from "effect"
import { DatabaseLive } from "../layers/Database.ts"
import { runMigrations } from "../layers/Migrations.ts"
import { Foundation } from "./App.ts"
import { exitCodeTeardown } from "./StartupError.ts"

/** `npm run migrate`: apply pending migrations to the configured database, then exit. */
runMigrations.pipe(
  Effect.asVoid,
  Effect.provide(DatabaseLive.pipe(Layer.provideMerge(Foundation))),
  NodeRuntime.runMain({ disableErrorReporting: true, teardown: exitCodeTeardown })
)
