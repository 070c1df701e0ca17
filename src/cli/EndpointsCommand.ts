import { Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import type { Schemas } from "../../packages/client/src/index.ts"
import { UsageError } from "./Failure.ts"
import { connect } from "./Http.ts"
import {
  type Output,
  orDash,
  output,
  printFields,
  printJson,
  printNextCursor,
  printTable,
  statusColor
} from "./Output.ts"
import { given, pageFlags, pageQuery } from "./Paging.ts"
import { sinceTime } from "./Time.ts"

/** `codex endpoints`: the tenant's webhook endpoints, a test delivery, recovery after an outage. */

const endpointId = Argument.String("endpoint-id").pipe(Argument.withDescription("The endpoint's id, ep_..."))

const eventTypes = Flag.String("event-type").pipe(
  Flag.withDescription("An event type or prefix.* to receive; repeat for more (none: every event)"),
  Flag.atLeast(0)
)

const description = Flag.String("description").pipe(Flag.withDescription("What the endpoint is for"), Flag.optional)

const rateLimit = Flag.Int("rate-limit").pipe(
  Flag.withDescription("At most this many deliveries per second to it (0: no limit)"),
  Flag.optional
)

const circuitColor = (out: Output, circuit: string) =>
  circuit === "closed"
    ? out.colors.green(circuit)
    : circuit === "open"
      ? out.colors.red(circuit)
      : out.colors.yellow(circuit)

const printEndpoint = (out: Output, endpoint: Schemas["Endpoint"]) =>
  printFields(out, [
    ["Id", endpoint.id],
    ["URL", endpoint.url],
    ["Description", orDash(endpoint.description)],
    ["Event types", endpoint.eventTypes.length === 0 ? "every event" : endpoint.eventTypes.join(", ")],
    ["Enabled", endpoint.enabled ? out.colors.green("yes") : out.colors.red("no")],
    ["Rate limit", endpoint.rateLimit === null ? "none" : `${endpoint.rateLimit}/s`],
    ["Circuit", circuitColor(out, endpoint.health.circuit)],
    ["Created", endpoint.createdAt],
    ["Updated", endpoint.updatedAt]
  ])

const create = Command.make(
  "create",
  {
    url: Argument.String("url").pipe(Argument.withDescription("Where to deliver: an absolute http(s) URL")),
    eventTypes,
    description,
    rateLimit,
    disabled: Flag.Boolean("disabled").pipe(Flag.withDescription("Create it disabled"), Flag.withDefault(false))
  },
  (input) =>
    Effect.gen(function* () {
      const api = yield* connect("tenant")
      const out = yield* output
      const body = {
        url: input.url,
        ...(input.eventTypes.length === 0 ? {} : { eventTypes: [...input.eventTypes] }),
        ...given({ description: input.description }),
        ...Option.match(input.rateLimit, { onNone: () => ({}), onSome: (n) => ({ rateLimit: n === 0 ? null : n }) }),
        ...(input.disabled ? { enabled: false } : {})
      }
      const { data } = yield* api.call((c) => c.POST("/v1/endpoints", { body }))
      if (out.json) return yield* printJson(data)
      yield* printEndpoint(out, data)
    })
).pipe(
  Command.withDescription("Register a webhook endpoint"),
  Command.withExamples([
    {
      command: "codex endpoints create https://example.com/hooks --event-type 'order.*'",
      description: "Receive every order event"
    }
  ])
)

const list = Command.make("list", pageFlags, (input) =>
  Effect.gen(function* () {
    const api = yield* connect("tenant")
    const out = yield* output
    const { data } = yield* api.call((c) => c.GET("/v1/endpoints", { params: { query: pageQuery(input) } }))
    if (out.json) return yield* printJson(data)
    yield* printTable(
      out,
      [
        { header: "ID", text: (e) => e.id },
        { header: "URL", text: (e) => e.url },
        { header: "EVENT TYPES", text: (e) => (e.eventTypes.length === 0 ? "*" : e.eventTypes.join(",")) },
        {
          header: "ENABLED",
          text: (e) => (e.enabled ? "yes" : "no"),
          color: (text, e) => (e.enabled ? text : out.colors.red(text))
        },
        { header: "CIRCUIT", text: (e) => e.health.circuit, color: (text) => circuitColor(out, text) },
        { header: "DESCRIPTION", text: (e) => e.description }
      ],
      data.data,
      "No endpoints."
    )
    yield* printNextCursor(data.nextCursor)
  })
).pipe(Command.withDescription("List the endpoints, newest first"))

const get = Command.make("get", { id: endpointId }, ({ id }) =>
  Effect.gen(function* () {
    const api = yield* connect("tenant")
    const out = yield* output
    const { data } = yield* api.call((c) => c.GET("/v1/endpoints/{id}", { params: { path: { id } } }))
    if (out.json) return yield* printJson(data)
    yield* printEndpoint(out, data)
  })
).pipe(Command.withDescription("Show an endpoint and its circuit"))

const update = Command.make(
  "update",
  {
    id: endpointId,
    url: Flag.String("url").pipe(Flag.withDescription("A new URL"), Flag.optional),
    eventTypes,
    allEventTypes: Flag.Boolean("all-event-types").pipe(
      Flag.withDescription("Receive every event again (clears the event types)"),
      Flag.withDefault(false)
    ),
    description,
    rateLimit,
    enable: Flag.Boolean("enable").pipe(Flag.withDescription("Enable it"), Flag.withDefault(false)),
    disable: Flag.Boolean("disable").pipe(Flag.withDescription("Disable it (deliveries wait)"), Flag.withDefault(false))
  },
  (input) =>
    Effect.gen(function* () {
      if (input.enable && input.disable) return yield* new UsageError({ message: "--enable or --disable, not both" })
      if (input.allEventTypes && input.eventTypes.length > 0) {
        return yield* new UsageError({ message: "--event-type or --all-event-types, not both" })
      }
      const body = {
        ...given({ url: input.url, description: input.description }),
        ...(input.eventTypes.length > 0 ? { eventTypes: [...input.eventTypes] } : {}),
        ...(input.allEventTypes ? { eventTypes: [] } : {}),
        ...Option.match(input.rateLimit, { onNone: () => ({}), onSome: (n) => ({ rateLimit: n === 0 ? null : n }) }),
        ...(input.enable ? { enabled: true } : input.disable ? { enabled: false } : {})
      }
      if (Object.keys(body).length === 0) {
        return yield* new UsageError({
          message:
            "nothing to change: give --url, --event-type, --all-event-types, --description, --rate-limit, --enable or --disable"
        })
      }
      const api = yield* connect("tenant")
      const out = yield* output
      const { data } = yield* api.call((c) =>
        c.PATCH("/v1/endpoints/{id}", { params: { path: { id: input.id } }, body })
      )
      if (out.json) return yield* printJson(data)
      yield* printEndpoint(out, data)
    })
).pipe(Command.withDescription("Change an endpoint: what is not given stays"))

const remove = Command.make("delete", { id: endpointId }, ({ id }) =>
  Effect.gen(function* () {
    const api = yield* connect("tenant")
    const out = yield* output
    yield* api.send((c) => c.DELETE("/v1/endpoints/{id}", { params: { path: { id } } }))
    if (out.json) return yield* printJson({ id, deleted: true })
    yield* printFields(out, [["Deleted", id]])
  })
).pipe(Command.withDescription("Delete an endpoint: its pending deliveries are cancelled, its history stays"))

const secret = Command.make("secret", { id: endpointId }, ({ id }) =>
  Effect.gen(function* () {
    const api = yield* connect("tenant")
    const out = yield* output
    const { data } = yield* api.call((c) => c.GET("/v1/endpoints/{id}/secret", { params: { path: { id } } }))
    if (out.json) return yield* printJson(data)
    yield* printFields(out, [
      ["Secret", data.secret],
      ["Previous", orDash(data.previousSecret)],
      ["Previous until", orDash(data.previousSecretExpiresAt)]
    ])
  })
).pipe(Command.withDescription("Print the endpoint's signing secret, to verify its webhooks"))

const test = Command.make("test", { id: endpointId }, ({ id }) =>
  Effect.gen(function* () {
    const api = yield* connect("tenant")
    const out = yield* output
    const { data } = yield* api.call((c) => c.POST("/v1/endpoints/{id}/test", { params: { path: { id } } }))
    if (out.json) return yield* printJson(data)
    yield* printFields(out, [
      ["Delivery", data.id],
      ["Event", data.eventId],
      ["Status", statusColor(out.colors, data.status)],
      ["", `Follow it: codex deliveries get ${data.id}`]
    ])
  })
).pipe(Command.withDescription("Send a codex.test event to the endpoint"))

const recover = Command.make(
  "recover",
  {
    id: endpointId,
    since: Flag.String("since").pipe(
      Flag.withDescription("Failed deliveries created since: ISO 8601, or a time ago such as 2h, 30m, 1d")
    )
  },
  ({ id, since }) =>
    Effect.gen(function* () {
      const body = { since: yield* sinceTime(since) }
      const api = yield* connect("tenant")
      const out = yield* output
      const { data } = yield* api.call((c) => c.POST("/v1/endpoints/{id}/recover", { params: { path: { id } }, body }))
      if (out.json) return yield* printJson(data)
      yield* printFields(out, [["Queued again", String(data.queued)]])
    })
).pipe(Command.withDescription("After an outage: send the failed deliveries since a time again"))

export const EndpointsCommand = Command.make("endpoints").pipe(
  Command.withDescription("Manage the tenant's webhook endpoints"),
  Command.withSubcommands([create, list, get, update, remove, secret, test, recover])
)
