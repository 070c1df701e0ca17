import { Effect, FileSystem, Option, Stdio, Stream } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import type { Schemas } from "../../packages/client/src/index.ts"
import { UsageError } from "./Failure.ts"
import { connect } from "./Http.ts"
import { output, printFields, printJson, printNextCursor, printTable } from "./Output.ts"
import { given, pageFlags, pageQuery } from "./Paging.ts"
import { optionalTime } from "./Time.ts"

/** `codex events`: publish events (from a file or stdin), list and read them. */

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** The text of `file`, or of stdin when it is `-` or absent (then stdin must not be a terminal). */
const readInput = (file: Option.Option<string>) =>
  Effect.gen(function* () {
    if (Option.isSome(file) && file.value !== "-") {
      const fs = yield* FileSystem.FileSystem
      return yield* fs
        .readFileString(file.value)
        .pipe(Effect.mapError((e) => new UsageError({ message: `cannot read ${file.value}: ${e.reason._tag}` })))
    }
    const stdio = yield* Stdio.Stdio
    if (yield* stdio.stdinIsTerminal) {
      return yield* new UsageError({
        message: "give the event as a JSON file, or pipe it on stdin: codex events publish event.json"
      })
    }
    return yield* stdio.stdin.pipe(
      Stream.decodeText(),
      Stream.mkString,
      Effect.mapError((e) => new UsageError({ message: `cannot read stdin: ${e.message}` }))
    )
  })

const parseJson = (text: string, source: string) =>
  Effect.try({
    try: (): unknown => JSON.parse(text),
    catch: (e) => new UsageError({ message: `${source} is not JSON: ${e instanceof Error ? e.message : String(e)}` })
  })

const publish = Command.make(
  "publish",
  {
    file: Argument.String("file").pipe(
      Argument.withDescription(
        "A JSON file: the event { type, data, occurredAt? }, or its data with --type. - or none: stdin"
      ),
      Argument.optional
    ),
    type: Flag.String("type").pipe(Flag.withDescription("The event's type: the JSON is then its data"), Flag.optional),
    occurredAt: Flag.String("occurred-at").pipe(
      Flag.withDescription("When it happened, ISO 8601 (default: now)"),
      Flag.optional
    ),
    idempotencyKey: Flag.String("idempotency-key").pipe(
      Flag.withDescription("Publish at most once per key: a retry answers the first publish again"),
      Flag.optional
    )
  },
  (input) =>
    Effect.gen(function* () {
      const source = Option.getOrElse(
        Option.filter(input.file, (f) => f !== "-"),
        () => "stdin"
      )
      const json = yield* parseJson(yield* readInput(input.file), source)
      const event: Record<string, unknown> = Option.isSome(input.type)
        ? { type: input.type.value, data: json }
        : isRecord(json)
          ? json
          : {}
      if (typeof event.type !== "string" || !isRecord(event.data)) {
        return yield* new UsageError({
          message: `${source} must be an event { "type": ..., "data": { ... } }, or its data (an object) with --type`
        })
      }
      const body = { ...event, ...given({ occurredAt: input.occurredAt }) } as Schemas["PublishEvent"]
      const headers = Option.match(input.idempotencyKey, {
        onNone: () => ({}),
        onSome: (key) => ({ "Idempotency-Key": key })
      })
      const api = yield* connect("tenant")
      const out = yield* output
      const { data, response } = yield* api.call((c) => c.POST("/v1/events", { body, headers }))
      const deprecation = response.headers.get("deprecation")
      if (deprecation !== null) {
        const since = new Date(Number(deprecation.slice(1)) * 1000).toISOString()
        yield* Effect.sync(() =>
          process.stderr.write(`warning: the event type ${data.event.type} is deprecated (since ${since})\n`)
        )
      }
      if (out.json) return yield* printJson(data)
      yield* printFields(out, [
        ["Event", data.event.id],
        ["Type", data.event.type],
        ["Deliveries", `${data.deliveriesQueued} queued`],
        ...(response.headers.get("idempotent-replayed") === "true"
          ? [["Replayed", "yes: published before with this key"] as const]
          : [])
      ])
    })
).pipe(
  Command.withDescription("Publish an event from a JSON file or stdin"),
  Command.withExamples([
    {
      command: "codex events publish event.json",
      description: 'A file holding { "type": "order.created", "data": {...} }'
    },
    {
      command: `echo '{"orderId":"o_1"}' | codex events publish --type order.created`,
      description: "The data on stdin, the type as a flag"
    }
  ])
)

const list = Command.make(
  "list",
  {
    ...pageFlags,
    type: Flag.String("type").pipe(Flag.withDescription("Only this type, or a prefix.* pattern"), Flag.optional),
    since: Flag.String("since").pipe(
      Flag.withDescription("Received since: ISO 8601, or 30m, 2h, 1d ago"),
      Flag.optional
    ),
    until: Flag.String("until").pipe(Flag.withDescription("Received before: ISO 8601, or a time ago"), Flag.optional)
  },
  (input) =>
    Effect.gen(function* () {
      const since = yield* optionalTime(input.since)
      const until = yield* optionalTime(input.until)
      const query = { ...pageQuery(input), ...given({ type: input.type, since, until }) }
      const api = yield* connect("tenant")
      const out = yield* output
      const { data } = yield* api.call((c) => c.GET("/v1/events", { params: { query } }))
      if (out.json) return yield* printJson(data)
      yield* printTable(
        out,
        [
          { header: "ID", text: (e) => e.id },
          { header: "TYPE", text: (e) => e.type },
          { header: "OCCURRED", text: (e) => e.occurredAt },
          { header: "RECEIVED", text: (e) => e.createdAt },
          { header: "DATA", text: (e) => (e.data === null ? "expunged" : JSON.stringify(e.data).slice(0, 60)) }
        ],
        data.data,
        "No events."
      )
      yield* printNextCursor(data.nextCursor)
    })
).pipe(Command.withDescription("List events, newest first"))

const get = Command.make(
  "get",
  { id: Argument.String("event-id").pipe(Argument.withDescription("The event's id, evt_...")) },
  ({ id }) =>
    Effect.gen(function* () {
      const api = yield* connect("tenant")
      const out = yield* output
      const { data } = yield* api.call((c) => c.GET("/v1/events/{id}", { params: { path: { id } } }))
      if (out.json) return yield* printJson(data)
      yield* printFields(out, [
        ["Id", data.id],
        ["Type", data.type],
        ["Occurred", data.occurredAt],
        ["Received", data.createdAt],
        ["Data", data.data === null ? `expunged at ${data.expungedAt}` : JSON.stringify(data.data, null, 2)]
      ])
    })
).pipe(Command.withDescription("Show an event and its data"))

export const EventsCommand = Command.make("events").pipe(
  Command.withDescription("Publish and read events"),
  Command.withSubcommands([publish, list, get])
)
