import { Effect } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { connect } from "./Http.ts"
import { orDash, output, printFields, printJson, printNextCursor, printTable } from "./Output.ts"
import { given, pageFlags, pageQuery } from "./Paging.ts"

/** `codex keys`: the tenant's own API keys (`/v1/api-keys`). */

const create = Command.make(
  "create",
  {
    name: Argument.String("name").pipe(Argument.withDescription("What the key is for (a name to tell keys apart)")),
    scope: Flag.Literals("scope", ["full", "read"]).pipe(
      Flag.withDescription("full (default) or read: GET and HEAD only"),
      Flag.optional
    ),
    expiresAt: Flag.String("expires-at").pipe(
      Flag.withDescription("When the key stops working, ISO 8601 (default: never)"),
      Flag.optional
    )
  },
  (input) =>
    Effect.gen(function* () {
      const api = yield* connect("tenant")
      const out = yield* output
      const body = { name: input.name, ...given({ scope: input.scope, expiresAt: input.expiresAt }) }
      const { data } = yield* api.call((c) => c.POST("/v1/api-keys", { body }))
      if (out.json) return yield* printJson(data)
      yield* printFields(out, [
        ["Id", data.id],
        ["Name", data.name],
        ["Scope", data.scope],
        ["Expires", orDash(data.expiresAt)],
        ["Key", `${out.colors.bold(data.key)}  ${out.colors.yellow("(shown once: store it now)")}`]
      ])
    })
).pipe(
  Command.withDescription("Issue an API key for the tenant (printed once)"),
  Command.withExamples([{ command: 'codex keys create "Dashboard" --scope read', description: "A read-only key" }])
)

const list = Command.make("list", pageFlags, (input) =>
  Effect.gen(function* () {
    const api = yield* connect("tenant")
    const out = yield* output
    const { data } = yield* api.call((c) => c.GET("/v1/api-keys", { params: { query: pageQuery(input) } }))
    if (out.json) return yield* printJson(data)
    yield* printTable(
      out,
      [
        { header: "ID", text: (k) => k.id },
        { header: "NAME", text: (k) => orDash(k.name) },
        { header: "PREFIX", text: (k) => k.prefix },
        { header: "SCOPE", text: (k) => k.scope },
        { header: "LAST USED", text: (k) => orDash(k.lastUsedAt) },
        { header: "EXPIRES", text: (k) => orDash(k.expiresAt) },
        {
          header: "REVOKED",
          text: (k) => orDash(k.revokedAt),
          color: (text, k) => (k.revokedAt === null ? text : out.colors.red(text))
        }
      ],
      data.data,
      "No API keys."
    )
    yield* printNextCursor(data.nextCursor)
  })
).pipe(Command.withDescription("List the tenant's API keys, newest first (never the keys themselves)"))

const revoke = Command.make(
  "revoke",
  {
    id: Argument.String("key-id").pipe(Argument.withDescription("The key's id, key_...")),
    lastFullKey: Flag.Boolean("last-full-key").pipe(
      Flag.withDescription("Revoke even the tenant's last full key (it can change nothing afterwards)"),
      Flag.withDefault(false)
    )
  },
  ({ id, lastFullKey }) =>
    Effect.gen(function* () {
      const api = yield* connect("tenant")
      const out = yield* output
      const query = lastFullKey ? { confirm: "last-full-key" as const } : {}
      yield* api.send((c) => c.DELETE("/v1/api-keys/{id}", { params: { path: { id }, query } }))
      if (out.json) return yield* printJson({ id, revoked: true })
      yield* printFields(out, [["Revoked", id]])
    })
).pipe(Command.withDescription("Revoke an API key: requests with it get 401 at once"))

export const KeysCommand = Command.make("keys").pipe(
  Command.withDescription("Manage the tenant's API keys"),
  Command.withSubcommands([create, list, revoke])
)
