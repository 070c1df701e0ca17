import { Console, Duration, Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import type { Schemas } from "../../packages/client/src/index.ts"
import { lastOutcome } from "./DeliveriesCommand.ts"
import { type ApiError, type Unreachable, UsageError } from "./Failure.ts"
import { type Api, connect } from "./Http.ts"
import { type Output, output, statusColor } from "./Output.ts"
import { given } from "./Paging.ts"
import { optionalTime } from "./Time.ts"

/**
 * `codex tail`: follows the tenant's deliveries live by polling `GET /v1/deliveries` (newest first) with `since` at
 * a watermark: the creation time of the oldest delivery still pending, or of the newest one seen. Each new delivery is
 * printed once, then each change of its status or attempts, until Ctrl-C.
 */

type Delivery = Schemas["Delivery"]

/** The pages of one poll, at most this many (100 deliveries each): a backlog larger than that shows its newest. */
const maxPages = 10

/** What was last printed of a delivery. */
interface Seen {
  readonly createdAt: string
  readonly status: string
  readonly attemptCount: number
}

const clock = (iso: string) => new Date(iso).toLocaleTimeString("en-GB", { hour12: false })

/** A delivery's line: when, status, ids, then the last attempt and the next one. */
const line = (out: Output, delivery: Delivery, isNew: boolean): string => {
  const { colors } = out
  const attempt = delivery.attemptCount === 0 ? "" : `  attempt ${delivery.attemptCount}  ${lastOutcome(delivery)}`
  const next =
    delivery.status === "pending" && delivery.attemptCount > 0 && delivery.nextAttemptAt !== null
      ? colors.dim(`  next ${clock(delivery.nextAttemptAt)}`)
      : ""
  const route = isNew ? `  ${delivery.eventId} → ${delivery.endpointId}` : ""
  const status = statusColor(colors, delivery.status) + " ".repeat(Math.max(0, 9 - delivery.status.length))
  return `${colors.dim(clock(delivery.updatedAt))}  ${status}  ${colors.bold(delivery.id)}${route}${attempt}${next}`
}

/** Every delivery created at or after `since` (all of them without), newest first, through the pages. */
const fetchSince = (api: Api, filters: Record<string, string>, since: string | undefined, pages = maxPages) =>
  Effect.gen(function* () {
    const all: Array<Delivery> = []
    let cursor: string | null = null
    for (let page = 0; page < pages; page++) {
      const query = {
        ...filters,
        limit: "100",
        ...(since === undefined ? {} : { since }),
        ...(cursor === null ? {} : { cursor })
      }
      const page: Schemas["DeliveryPage"] = (yield* api.call((c) => c.GET("/v1/deliveries", { params: { query } })))
        .data
      all.push(...page.data)
      cursor = page.nextCursor
      if (cursor === null) break
    }
    return all
  })

/** What `tail` waits out after its first poll (saying so on stderr): other failures end the command. */
const isTransient = (error: ApiError | Unreachable) =>
  error._tag === "Unreachable" ||
  error.status === 429 ||
  error.status === 502 ||
  error.status === 503 ||
  error.status === 504

export const TailCommand = Command.make(
  "tail",
  {
    endpoint: Flag.String("endpoint").pipe(
      Flag.withDescription("Only deliveries to this endpoint (ep_...)"),
      Flag.optional
    ),
    eventType: Flag.String("event-type").pipe(
      Flag.withDescription("Only deliveries of events of this type"),
      Flag.optional
    ),
    since: Flag.String("since").pipe(
      Flag.withDescription("Also print the deliveries since: ISO 8601, or 10m, 1h ago (default: only new ones)"),
      Flag.optional
    ),
    interval: Flag.Finite("interval").pipe(
      Flag.withDescription("Seconds between two polls (default 2); each poll counts against the tenant's rate limit"),
      Flag.withDefault(2)
    )
  },
  (input) =>
    Effect.gen(function* () {
      if (!(input.interval >= 0.1)) return yield* new UsageError({ message: "--interval must be at least 0.1 seconds" })
      const since = yield* optionalTime(input.since)
      const filters = given({ endpointId: input.endpoint, eventType: input.eventType })
      const api = yield* connect("tenant")
      const out = yield* output
      const seen = new Map<string, Seen>()
      let watermark = Option.getOrUndefined(since)
      if (watermark === undefined) {
        // Without --since, what exists already is the starting point: only what comes after is printed.
        for (const delivery of yield* fetchSince(api, filters, undefined, 1)) {
          seen.set(delivery.id, delivery)
          if (watermark === undefined || delivery.createdAt > watermark) watermark = delivery.createdAt
        }
      }
      if (!out.json) yield* Console.error(out.colors.dim(`Following the deliveries at ${api.url} (Ctrl-C to stop)`))

      const step = Effect.gen(function* () {
        const deliveries = yield* fetchSince(api, filters, watermark)
        const changed = deliveries
          .filter((d) => {
            const before = seen.get(d.id)
            return before === undefined || before.status !== d.status || before.attemptCount !== d.attemptCount
          })
          .sort((a, b) =>
            a.updatedAt < b.updatedAt ? -1 : a.updatedAt > b.updatedAt ? 1 : a.createdAt < b.createdAt ? -1 : 1
          )
        for (const delivery of changed) {
          yield* Console.log(out.json ? JSON.stringify(delivery) : line(out, delivery, !seen.has(delivery.id)))
          seen.set(delivery.id, delivery)
        }
        // The next window opens at the oldest pending delivery, or the newest seen: what settled before it is done.
        const pending = [...seen.values()].filter((s) => s.status === "pending").map((s) => s.createdAt)
        const newest = [...seen.values()]
          .map((s) => s.createdAt)
          .sort()
          .at(-1)
        watermark = [...pending, ...(newest === undefined ? [] : [newest])].sort()[0] ?? watermark
        for (const [id, s] of seen) if (watermark !== undefined && s.createdAt < watermark) seen.delete(id)
      })
      // After the first poll, a busy or unreachable server is waited out; the answer is the wait before the next poll.
      const pollSafely = step.pipe(
        Effect.as(input.interval),
        Effect.catchIf(isTransient, (error) =>
          Effect.as(
            Console.error(
              out.colors.yellow(
                error._tag === "Unreachable"
                  ? `cannot reach ${error.url} (${error.reason}); trying again`
                  : `${error.status} ${error.title}; trying again${error.retryAfter === undefined ? "" : ` in ${error.retryAfter} s`}`
              )
            ),
            error._tag === "ApiError" && error.retryAfter !== undefined
              ? Math.max(error.retryAfter, input.interval)
              : input.interval
          )
        )
      )
      // The first poll's failures end the command (a wrong URL or key must not retry forever).
      yield* step
      yield* Effect.sleep(Duration.seconds(input.interval))
      return yield* Effect.forever(Effect.flatMap(pollSafely, (seconds) => Effect.sleep(Duration.seconds(seconds))))
    })
).pipe(
  Command.withDescription("Follow new deliveries and each change of their status live, until Ctrl-C"),
  Command.withExamples([
    { command: "codex tail", description: "Every new delivery of the tenant" },
    { command: "codex tail --endpoint ep_... --since 10m", description: "One endpoint's, from 10 minutes ago" }
  ])
)
