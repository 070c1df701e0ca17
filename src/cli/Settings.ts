import { Flag, GlobalFlag } from "effect/cli"

/**
 * The flags every `codex` command takes, anywhere on the line (`codex --json tenants list` = `codex tenants list
 * --json`). Connection flags win over the environment, which wins over the config file (Profile.ts).
 */

export const UrlFlag = GlobalFlag.Setting("url")({
  flag: Flag.String("url").pipe(
    Flag.withDescription("The codex-api server (env CODEX_URL; default http://localhost:3000)"),
    Flag.optional
  )
})

export const ApiKeyFlag = GlobalFlag.Setting("api-key")({
  flag: Flag.String("api-key").pipe(
    Flag.withDescription("A tenant API key, ck_..., for tenant commands (env CODEX_API_KEY)"),
    Flag.optional
  )
})

export const AdminTokenFlag = GlobalFlag.Setting("admin-token")({
  flag: Flag.String("admin-token").pipe(
    Flag.withDescription("The server's ADMIN_TOKEN, for tenants, portal and --tenant (env CODEX_ADMIN_TOKEN)"),
    Flag.optional
  )
})

export const TenantFlag = GlobalFlag.Setting("tenant")({
  flag: Flag.String("tenant").pipe(
    Flag.withDescription(
      "Act as this tenant (ten_...) with the admin token: the Codex-Tenant header (env CODEX_TENANT)"
    ),
    Flag.optional
  )
})

export const ProfileFlag = GlobalFlag.Setting("profile")({
  flag: Flag.String("profile").pipe(
    Flag.withDescription("The config file's profile to use (env CODEX_PROFILE)"),
    Flag.optional
  )
})

export const ConfigFlag = GlobalFlag.Setting("config")({
  flag: Flag.String("config").pipe(
    Flag.withDescription("The config file (env CODEX_CONFIG; default ~/.config/codex/config.json)"),
    Flag.optional
  )
})

export const JsonFlag = GlobalFlag.Setting("json")({
  flag: Flag.Boolean("json").pipe(
    Flag.withDescription("Print JSON for scripts (a list's page as { data, nextCursor }; tail: one object a line)"),
    Flag.withDefault(false)
  )
})

export const ColorFlag = GlobalFlag.Setting("color")({
  flag: Flag.Boolean("color").pipe(
    Flag.withDescription("Colours on or off (--no-color); default: on a terminal, unless NO_COLOR is set"),
    Flag.optional
  )
})

export const globalFlags = [
  UrlFlag,
  ApiKeyFlag,
  AdminTokenFlag,
  TenantFlag,
  ProfileFlag,
  ConfigFlag,
  JsonFlag,
  ColorFlag
] as const
