import { homedir } from "node:os"
import { join } from "node:path"
import { Effect, FileSystem, Option, Schema, SchemaIssue } from "effect"
import { UsageError } from "./Failure.ts"
import { AdminTokenFlag, ApiKeyFlag, ConfigFlag, ProfileFlag, TenantFlag, UrlFlag } from "./Settings.ts"

/**
 * Where a command connects and with what: each value from its flag, else its environment variable, else the config
 * file's profile, else the file's top level. The config file (JSON, `--config`, CODEX_CONFIG, or
 * `$XDG_CONFIG_HOME/codex/config.json`, by default `~/.config/codex/config.json`):
 *
 * ```json
 * { "profile": "local",
 *   "profiles": { "local": { "url": "http://localhost:3000", "apiKey": "ck_..." },
 *                 "prod": { "url": "https://codex.example.com", "adminToken": "..." } } }
 * ```
 */
export interface Connection {
  readonly url: string
  readonly apiKey: string | undefined
  readonly adminToken: string | undefined
  readonly tenant: string | undefined
}

export const defaultUrl = "http://localhost:3000"

const profileFields = {
  url: Schema.optionalKey(Schema.String),
  apiKey: Schema.optionalKey(Schema.String),
  adminToken: Schema.optionalKey(Schema.String),
  tenant: Schema.optionalKey(Schema.String)
}

const ConfigFile = Schema.Struct({
  ...profileFields,
  profile: Schema.optionalKey(Schema.String),
  profiles: Schema.optionalKey(Schema.Record(Schema.String, Schema.Struct(profileFields)))
})
type ConfigFile = typeof ConfigFile.Type
type ProfileValues = Partial<Record<keyof typeof profileFields, string>>

const decodeConfigFile = Schema.decodeUnknownEffect(Schema.fromJsonString(ConfigFile))
const formatIssue = SchemaIssue.makeFormatterStandardSchemaV1()

/** An environment variable; empty counts as unset. */
export const env = (name: string): Effect.Effect<string | undefined> =>
  Effect.sync(() => {
    const value = process.env[name]
    return value === undefined || value === "" ? undefined : value
  })

const defaultConfigPath = Effect.gen(function* () {
  const base = (yield* env("XDG_CONFIG_HOME")) ?? join(homedir(), ".config")
  return join(base, "codex", "config.json")
})

/** The config file's content; none at the default path is an empty file, none at a path given is an error. */
const readConfigFile = Effect.gen(function* () {
  const given = Option.getOrUndefined(yield* ConfigFlag) ?? (yield* env("CODEX_CONFIG"))
  const path = given ?? (yield* defaultConfigPath)
  const fs = yield* FileSystem.FileSystem
  const text = yield* fs
    .readFileString(path)
    .pipe(
      Effect.catch((error) =>
        error.reason._tag === "NotFound" && given === undefined
          ? Effect.succeed(undefined)
          : Effect.fail(new UsageError({ message: `cannot read the config file ${path}: ${error.reason._tag}` }))
      )
    )
  if (text === undefined) return {} satisfies ConfigFile
  return yield* decodeConfigFile(text, { onExcessProperty: "error" }).pipe(
    Effect.mapError((error) => {
      const [first] = formatIssue(error.issue).issues
      const where = (first?.path ?? []).map(String).join(".")
      return new UsageError({
        message: `invalid config file ${path}: ${where === "" ? "" : `${where}: `}${first?.message ?? error.message}`
      })
    })
  )
})

/** The profile's values over the file's top level. */
const profileOf = (file: ConfigFile) =>
  Effect.gen(function* () {
    const name = Option.getOrUndefined(yield* ProfileFlag) ?? (yield* env("CODEX_PROFILE")) ?? file.profile
    const profiles = file.profiles ?? {}
    const chosen = name === undefined ? profiles.default : profiles[name]
    if (name !== undefined && chosen === undefined) {
      const known = Object.keys(profiles)
      return yield* new UsageError({
        message: `no profile "${name}" in the config file (${known.length === 0 ? "it has none" : `it has: ${known.join(", ")}`})`
      })
    }
    const { profile: _, profiles: __, ...topLevel } = file
    return { ...topLevel, ...chosen } satisfies ProfileValues
  })

/** The connection of this command line: flags, then environment, then the config file. */
export const resolveConnection = Effect.gen(function* () {
  const file = yield* profileOf(yield* readConfigFile)
  const pick = (flag: Option.Option<string>, variable: string, fromFile: string | undefined) =>
    Effect.map(env(variable), (fromEnv) => Option.getOrUndefined(flag) ?? fromEnv ?? fromFile)
  const url = (yield* pick(yield* UrlFlag, "CODEX_URL", file.url)) ?? defaultUrl
  if (!/^https?:\/\/[^\s/]+/i.test(url) || !URL.canParse(url)) {
    return yield* new UsageError({ message: `not an http(s) URL: ${url} (--url, CODEX_URL or the config file)` })
  }
  return {
    url: url.replace(/\/+$/, ""),
    apiKey: yield* pick(yield* ApiKeyFlag, "CODEX_API_KEY", file.apiKey),
    adminToken: yield* pick(yield* AdminTokenFlag, "CODEX_ADMIN_TOKEN", file.adminToken),
    tenant: yield* pick(yield* TenantFlag, "CODEX_TENANT", file.tenant)
  } satisfies Connection
})
