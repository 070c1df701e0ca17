import { Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import type { Schemas } from "../../packages/client/src/index.ts"
import { UsageError } from "./Failure.ts"
import { connect } from "./Http.ts"
import { type Output, orDash, output, printFields, printJson, printNextCursor, printTable } from "./Output.ts"
import { given, pageFlags, pageQuery } from "./Paging.ts"

/** `codex tenants`: the admin API's tenants (ADMIN_TOKEN; open in development without one). */

const tenantId = Argument.String("tenant-id").pipe(Argument.withDescription("The tenant's id, ten_..."))

const tenantFields = (out: Output, tenant: Schemas["Tenant"]): ReadonlyArray<readonly [string, string]> => [
  ["Id", tenant.id],
  ["Name", tenant.name],
  ["Status", tenant.status === "active" ? out.colors.green(tenant.status) : out.colors.yellow(tenant.status)],
  [
    "Rate limit",
    tenant.rateLimit === null ? "server default" : `${tenant.rateLimit.limit} per ${tenant.rateLimit.windowSeconds} s`
  ],
  ["Retention", tenant.retentionSeconds === null ? "server default" : `${tenant.retentionSeconds} s`],
  ["Strict event types", tenant.strictEventTypes ? "yes" : "no"],
  ["Created", tenant.createdAt]
]

const create = Command.make(
  "create",
  {
    name: Argument.String("name").pipe(Argument.withDescription("The tenant's display name")),
    rateLimit: Flag.Int("rate-limit").pipe(
      Flag.withDescription("Its own quota: requests per window on /v1 (with --rate-window)"),
      Flag.optional
    ),
    rateWindow: Flag.Int("rate-window").pipe(Flag.withDescription("The quota's window in seconds"), Flag.optional),
    retentionSeconds: Flag.Int("retention-seconds").pipe(
      Flag.withDescription("How long its events are kept (default: the server's RETENTION)"),
      Flag.optional
    ),
    strictEventTypes: Flag.Boolean("strict-event-types").pipe(
      Flag.withDescription("Refuse event types that are not in its catalog"),
      Flag.withDefault(false)
    )
  },
  (input) =>
    Effect.gen(function* () {
      if (Option.isSome(input.rateLimit) !== Option.isSome(input.rateWindow)) {
        return yield* new UsageError({ message: "--rate-limit and --rate-window go together" })
      }
      const api = yield* connect("admin")
      const out = yield* output
      const rateLimit = Option.zipWith(input.rateLimit, input.rateWindow, (limit, windowSeconds) => ({
        limit,
        windowSeconds
      }))
      const body = {
        name: input.name,
        ...given({ rateLimit, retentionSeconds: input.retentionSeconds }),
        ...(input.strictEventTypes ? { strictEventTypes: true } : {})
      }
      const { data } = yield* api.call((c) => c.POST("/admin/tenants", { body }))
      if (out.json) return yield* printJson(data)
      yield* printFields(out, [
        ...tenantFields(out, data.tenant),
        ["API key", `${out.colors.bold(data.apiKey.key)}  ${out.colors.yellow("(shown once: store it now)")}`]
      ])
    })
).pipe(
  Command.withDescription("Create a tenant and its first API key (printed once)"),
  Command.withExamples([{ command: 'codex tenants create "Acme Inc."', description: "A tenant named Acme Inc." }])
)

const list = Command.make("list", pageFlags, (input) =>
  Effect.gen(function* () {
    const api = yield* connect("admin")
    const out = yield* output
    const { data } = yield* api.call((c) => c.GET("/admin/tenants", { params: { query: pageQuery(input) } }))
    if (out.json) return yield* printJson(data)
    yield* printTable(
      out,
      [
        { header: "ID", text: (t) => t.id },
        { header: "NAME", text: (t) => t.name },
        {
          header: "STATUS",
          text: (t) => t.status,
          color: (text, t) => (t.status === "active" ? out.colors.green(text) : out.colors.yellow(text))
        },
        { header: "CREATED", text: (t) => t.createdAt }
      ],
      data.data,
      "No tenants."
    )
    yield* printNextCursor(data.nextCursor)
  })
).pipe(Command.withDescription("List tenants, newest first"))

const get = Command.make("get", { id: tenantId }, ({ id }) =>
  Effect.gen(function* () {
    const api = yield* connect("admin")
    const out = yield* output
    const { data } = yield* api.call((c) => c.GET("/admin/tenants/{id}", { params: { path: { id } } }))
    if (out.json) return yield* printJson(data)
    const deletion =
      data.deletion === null
        ? []
        : [
            [
              "Deletion",
              `${data.deletion.eventsRemoved} events removed, ${data.deletion.eventsRemaining} to go`
            ] as const
          ]
    yield* printFields(out, [...tenantFields(out, data), ...deletion])
    yield* printTable(
      out,
      [
        { header: "KEY", text: (k) => k.id },
        { header: "PREFIX", text: (k) => k.prefix },
        { header: "CREATED", text: (k) => k.createdAt },
        { header: "REVOKED", text: (k) => orDash(k.revokedAt) }
      ],
      data.apiKeys,
      "No API keys."
    )
  })
).pipe(Command.withDescription("Show a tenant and its API keys (prefixes only)"))

const remove = Command.make("delete", { id: tenantId }, ({ id }) =>
  Effect.gen(function* () {
    const api = yield* connect("admin")
    const out = yield* output
    const { data } = yield* api.call((c) => c.DELETE("/admin/tenants/{id}", { params: { path: { id } } }))
    if (out.json) return yield* printJson(data)
    yield* printFields(out, [
      ["Id", data.id],
      ["Status", out.colors.yellow(data.status)],
      ["", "Its API keys answer 401 now; its data is removed in the background (codex tenants get shows progress)."]
    ])
  })
).pipe(Command.withDescription("Delete a tenant and all its data (its keys stop working at once)"))

export const TenantsCommand = Command.make("tenants").pipe(
  Command.withDescription("Manage tenants (the admin API: ADMIN_TOKEN)"),
  Command.withSubcommands([create, list, get, remove])
)
