import { Effect, Option, Schema } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { Events } from "../../services/Events.ts"
import { Api } from "../api/Api.ts"
import { KeyedRequest } from "../api/Idempotency.ts"
import { CurrentTenant } from "../api/Security.ts"
import { EventId } from "../domain/Ids.ts"
import { pageRequest, pageResponse } from "./Cursor.ts"
import { orNotFound, pathId } from "./Params.ts"

const eventId = pathId(EventId, "event")

export const EventsHttp = HttpApiBuilder.group(
  Api,
  "events",
  Effect.fn(function* (handlers) {
    const events = yield* Events
    return handlers
      .handle("publish", ({ payload }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const keyed = yield* Effect.serviceOption(KeyedRequest)
          if (Option.isNone(keyed)) return yield* events.publish(tenant.id, payload).pipe(Effect.orDie)
          const run = keyed.value
          if (run._tag === "Replay") {
            const again = yield* events.published(tenant.id, run.ref).pipe(Effect.orDie)
            if (Option.isNone(again)) return yield* Effect.die(new Error("a replayed event is gone"))
            return again.value
          }
          const published = yield* events.publishKeyed(tenant.id, payload, run.claim).pipe(Effect.orDie)
          if (Option.isNone(published)) return yield* run.claimLost
          return published.value
        })
      )
      .handle("list", ({ query }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const list = { name: "events", owner: tenant.id, isId: Schema.is(EventId) }
          const page = yield* events
            .list(tenant.id, yield* pageRequest(list, query), Option.fromNullishOr(query.type))
            .pipe(Effect.orDie)
          return pageResponse(list)(page)
        })
      )
      .handle("get", ({ params }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const id = yield* eventId(params.id)
          return yield* events.get(tenant.id, id).pipe(Effect.orDie, orNotFound("event"))
        })
      )
  })
)
