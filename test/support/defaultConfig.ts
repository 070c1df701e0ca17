import { type Config, ConfigProvider, Duration, Effect, Option, Predicate, Redacted } from "effect"
import { appConfig } from "../../layers/AppConfigLive.ts"
import type { AppConfigShape, AppEnv } from "../../services/AppConfig.ts"
import { testEncryptionKeysEnv } from "./appConfig.ts"

/** The variables without which the configuration does not parse: `ENCRYPTION_KEYS` outside development. */
export const requiredVariables = (appEnv: AppEnv): Record<string, string> =>
  appEnv === "development" ? {} : { ENCRYPTION_KEYS: testEncryptionKeysEnv }

/**
 * The real parser's configuration for `appEnv` from exactly these variables, as the app reads `process.env`: by
 * default only `APP_ENV` and the required ones, i.e. the defaults an operator gets.
 */
export const parseConfig = (
  appEnv: AppEnv,
  env: Record<string, string> = {}
): Effect.Effect<AppConfigShape, Config.ConfigError> =>
  appConfig.parse(ConfigProvider.fromEnv({ env: { APP_ENV: appEnv, ...requiredVariables(appEnv), ...env } }))

/** Parses `appConfig` from exactly `env`, recording every variable name the config asks the provider for. */
export const parseRecording = (env: Record<string, string>) => {
  const read = new Set<string>()
  const inner = ConfigProvider.fromEnv({ env })
  const recording = ConfigProvider.make((path) => {
    read.add(path.join("_"))
    return inner.load(path)
  })
  return { result: Effect.runSync(Effect.result(appConfig.parse(recording))), read }
}

/** A plain copy of a configuration (secrets, options and durations spelled out), for comparing two of them. */
export const reveal = (value: unknown): unknown => {
  if (Redacted.isRedacted(value)) return { redacted: reveal(Redacted.value(value)) }
  if (Option.isOption(value)) return Option.isSome(value) ? { some: reveal(value.value) } : "none"
  if (Duration.isDuration(value)) return `${Duration.toMillis(value)} ms`
  if (Predicate.isUint8Array(value)) return Buffer.from(value).toString("hex")
  if (Array.isArray(value)) return value.map(reveal)
  // JSON.stringify throws on a bigint.
  if (typeof value === "bigint") return `${value}n`
  if (Predicate.isObject(value)) {
    return Object.fromEntries(Object.entries(value).map(([key, field]) => [key, reveal(field)]))
  }
  return value
}

/**
 * Every setting of a configuration as `path → value` (`delivery.backoffBase → "60000 ms"`), descending into the
 * groups; options, secrets, durations and lists are single values.
 */
export const settingsOf = (config: AppConfigShape): ReadonlyMap<string, string> => {
  const settings = new Map<string, string>()
  const visit = (value: unknown, path: string): void => {
    const plainGroup =
      Predicate.isObject(value) &&
      !Option.isOption(value) &&
      !Redacted.isRedacted(value) &&
      !Duration.isDuration(value) &&
      !Predicate.isUint8Array(value)
    if (plainGroup && Object.keys(value).length > 0) {
      for (const [key, field] of Object.entries(value)) visit(field, path === "" ? key : `${path}.${key}`)
    } else {
      settings.set(path, JSON.stringify(reveal(value)))
    }
  }
  visit(config, "")
  return settings
}
