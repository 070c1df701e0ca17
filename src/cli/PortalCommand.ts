import { Console, Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { connect } from "./Http.ts"
import { output, printJson } from "./Output.ts"

/** `codex portal`: a link to the tenant's portal (`POST /admin/tenants/{id}/portal-sessions`), printed on stdout. */
export const PortalCommand = Command.make(
  "portal",
  {
    tenant: Argument.String("tenant-id").pipe(Argument.withDescription("The tenant's id, ten_...")),
    readOnly: Flag.Boolean("read-only").pipe(
      Flag.withDescription("A session that can look but not change anything"),
      Flag.withDefault(false)
    ),
    expiresIn: Flag.Int("expires-in").pipe(
      Flag.withDescription("Seconds the link stays valid (default: the server's)"),
      Flag.optional
    )
  },
  (input) =>
    Effect.gen(function* () {
      const api = yield* connect("admin")
      const out = yield* output
      const body = {
        ...(input.readOnly ? { readOnly: true } : {}),
        ...Option.match(input.expiresIn, { onNone: () => ({}), onSome: (expiresIn) => ({ expiresIn }) })
      }
      const { data } = yield* api.call((c) =>
        c.POST("/admin/tenants/{id}/portal-sessions", { params: { path: { id: input.tenant } }, body })
      )
      if (out.json) return yield* printJson(data)
      yield* Console.log(data.url)
    })
).pipe(
  Command.withDescription("Print a link to a tenant's portal (the admin API)"),
  Command.withExamples([
    { command: "open $(codex portal ten_... --read-only)", description: "Open a read-only portal" }
  ])
)
