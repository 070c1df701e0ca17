import type { Config } from "effect"
import { Layer } from "effect"
import { AppConfigLive } from "../layers/AppConfigLive.ts"
import { LoggerLive } from "../layers/LoggerLive.ts"
import { LogSinkStdout } from "../layers/LogSinkLive.ts"
import type { AppConfig } from "../services/AppConfig.ts"
import type { LogSink } from "../services/LogSink.ts"

/**
 * Config and logging, shared by every entry point. A module of its own, not in App.ts: `npm run worker` and
 * `npm run migrate` import it without loading the HTTP API (routes, schemas, OpenAPI, tracing), which would only add
 * to their start-up (see bench/startup.ts).
 */
export const Foundation: Layer.Layer<AppConfig | LogSink, Config.ConfigError> = LoggerLive.pipe(
  Layer.provideMerge(Layer.merge(AppConfigLive, LogSinkStdout))
)
