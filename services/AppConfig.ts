import type { Duration, LogLevel, Option, Redacted } from "effect"
import { Context } from "effect"

/** Deployment environment; it changes defaults (log format, shutdown delay, CORS, HSTS, seeding). */
export type AppEnv = "development" | "staging" | "production"

export type LogFormat = "json" | "pretty"

/** The whole runtime configuration, read once at startup and validated before anything listens. */
export interface AppConfigShape {
  readonly appEnv: AppEnv
  readonly version: string
  readonly host: string
  readonly port: number
  /** None = run on the embedded PGlite database. */
  readonly databaseUrl: Option.Option<Redacted.Redacted<string>>
  /** Directory of the embedded database, or `memory://` for an in-memory one. */
  readonly pgliteDir: string
  readonly databasePoolMax: number
  readonly logLevel: LogLevel.LogLevel
  readonly logFormat: LogFormat
  /** Deadline for the whole shutdown, counted from the signal. */
  readonly shutdownTimeout: Duration.Duration
  /** How long readiness reports 503 before the listener closes, so load balancers stop routing here first. */
  readonly shutdownDelay: Duration.Duration
  readonly adminToken: Option.Option<Redacted.Redacted<string>>
  /** None = unset: any origin in development, no cross-origin access elsewhere. */
  readonly corsOrigins: Option.Option<ReadonlyArray<string>>
  /** Largest accepted request body in bytes (413 above it). */
  readonly bodyLimitBytes: number
  /** Let webhook URLs reach private, loopback and link-local addresses (SSRF guard off). */
  readonly webhookAllowPrivateNetworks: boolean
}

export class AppConfig extends Context.Service<AppConfig, AppConfigShape>()("codex/AppConfig") {}
