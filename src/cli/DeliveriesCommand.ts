import { Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import type { Schemas } from "../../packages/client/src/index.ts"
import { UsageError } from "./Failure.ts"
import { connect } from "./Http.ts"
import {
  type Column,
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
import { optionalTime } from "./Time.ts"

/** `codex deliveries`: each event sent to each endpoint, its attempts, and sending one again. */

export const deliveryStatuses = ["pending", "succeeded", "failed", "cancelled"] as const

const deliveryId = Argument.String("delivery-id").pipe(Argument.withDescription("The delivery's id, dlv_..."))

/** The last attempt's answer in a word: its HTTP status, else its error. */
export const lastOutcome = (delivery: Schemas["Delivery"]): string =>
  delivery.lastStatus !== null ? `HTTP ${delivery.lastStatus}` : orDash(delivery.lastError)

const deliveryColumns = (out: Output): ReadonlyArray<Column<Schemas["Delivery"]>> => [
  { header: "ID", text: (d) => d.id },
  { header: "STATUS", text: (d) => d.status, color: (text) => statusColor(out.colors, text) },
  { header: "EVENT", text: (d) => d.eventId },
  { header: "ENDPOINT", text: (d) => (d.endpointDeleted ? `${d.endpointId} (deleted)` : d.endpointId) },
  { header: "ATTEMPTS", text: (d) => String(d.attemptCount) },
  { header: "LAST", text: lastOutcome },
  { header: "CREATED", text: (d) => d.createdAt }
]

const list = Command.make(
  "list",
  {
    ...pageFlags,
    status: Flag.Literals("status", deliveryStatuses).pipe(Flag.withDescription("Only this status"), Flag.optional),
    endpoint: Flag.String("endpoint").pipe(Flag.withDescription("Only to this endpoint (ep_...)"), Flag.optional),
    eventType: Flag.String("event-type").pipe(Flag.withDescription("Only of events of this type"), Flag.optional),
    event: Flag.String("event").pipe(
      Flag.withDescription("The deliveries of one event (evt_...): no other filter, no paging"),
      Flag.optional
    ),
    since: Flag.String("since").pipe(
      Flag.withDescription("Created since: ISO 8601, or 30m, 2h, 1d ago"),
      Flag.optional
    ),
    until: Flag.String("until").pipe(Flag.withDescription("Created before: ISO 8601, or a time ago"), Flag.optional)
  },
  (input) =>
    Effect.gen(function* () {
      const out = yield* output
      if (Option.isSome(input.event)) {
        const others: ReadonlyArray<Option.Option<unknown>> = [
          input.status,
          input.endpoint,
          input.eventType,
          input.since,
          input.until,
          input.limit,
          input.cursor
        ]
        if (others.some(Option.isSome)) {
          return yield* new UsageError({
            message: "--event lists all of one event's deliveries: it takes no other filter"
          })
        }
        const api = yield* connect("tenant")
        const id = input.event.value
        const { data } = yield* api.call((c) => c.GET("/v1/events/{id}/deliveries", { params: { path: { id } } }))
        if (out.json) return yield* printJson(data)
        return yield* printTable(out, deliveryColumns(out), data.data, "No deliveries.")
      }
      const since = yield* optionalTime(input.since)
      const until = yield* optionalTime(input.until)
      const query = {
        ...pageQuery(input),
        ...given({ status: input.status, endpointId: input.endpoint, eventType: input.eventType, since, until })
      }
      const api = yield* connect("tenant")
      const { data } = yield* api.call((c) => c.GET("/v1/deliveries", { params: { query } }))
      if (out.json) return yield* printJson(data)
      yield* printTable(out, deliveryColumns(out), data.data, "No deliveries.")
      yield* printNextCursor(data.nextCursor)
    })
).pipe(
  Command.withDescription("List deliveries, newest first, by status, endpoint, event type, time, or of one event"),
  Command.withExamples([
    { command: "codex deliveries list --status failed --since 1d", description: "What failed in the last day" }
  ])
)

const get = Command.make("get", { id: deliveryId }, ({ id }) =>
  Effect.gen(function* () {
    const api = yield* connect("tenant")
    const out = yield* output
    const { data } = yield* api.call((c) => c.GET("/v1/deliveries/{id}", { params: { path: { id } } }))
    if (out.json) return yield* printJson(data)
    yield* printFields(out, [
      ["Id", data.id],
      ["Status", statusColor(out.colors, data.status)],
      ["Event", data.eventId],
      ["Endpoint", data.endpointDeleted ? `${data.endpointId} (deleted)` : data.endpointId],
      ["Attempts", String(data.attemptCount)],
      ["Next attempt", orDash(data.nextAttemptAt)],
      ["Delivered", orDash(data.deliveredAt)],
      ["Last error", orDash(data.lastError)],
      ["Created", data.createdAt]
    ])
    yield* printTable(
      out,
      [
        { header: "#", text: (a) => String(a.attempt) },
        { header: "STARTED", text: (a) => a.startedAt },
        { header: "OUTCOME", text: (a) => a.outcome, color: (text) => statusColor(out.colors, text) },
        { header: "HTTP", text: (a) => orDash(a.statusCode) },
        { header: "MS", text: (a) => String(a.durationMs) },
        { header: "ERROR", text: (a) => orDash(a.error) }
      ],
      data.attempts,
      "No attempts yet."
    )
  })
).pipe(Command.withDescription("Show a delivery and every attempt"))

const retry = Command.make("retry", { id: deliveryId }, ({ id }) =>
  Effect.gen(function* () {
    const api = yield* connect("tenant")
    const out = yield* output
    const { data } = yield* api.call((c) => c.POST("/v1/deliveries/{id}/retry", { params: { path: { id } } }))
    if (out.json) return yield* printJson(data)
    yield* printFields(out, [
      ["Delivery", data.id],
      ["Status", statusColor(out.colors, data.status)],
      ["Next attempt", orDash(data.nextAttemptAt)]
    ])
  })
).pipe(Command.withDescription("Send a delivery again now"))

export const DeliveriesCommand = Command.make("deliveries").pipe(
  Command.withDescription("Inspect deliveries and send them again"),
  Command.withSubcommands([list, get, retry])
)
