import { Effect, Option, Schema } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { Events } from "../../services/Events.ts"
import { EventTypes } from "../../services/EventTypes.ts"
import { Api } from "../api/Api.ts"
import { KeyedRequest } from "../api/Idempotency.ts"
import { RequestJson } from "../api/JsonBody.ts"
import { Conflict, UnprocessableContent } from "../api/Problems.ts"
import { CurrentTenant } from "../api/Security.ts"
import type { NewEvent } from "../domain/Event.ts"
import { EventId } from "../domain/Ids.ts"
import { isOperationalType, operationalPrefix } from "../domain/OperationalEvents.ts"
import { pageRequest, pageResponse } from "./Cursor.ts"
import { makeEventAdmission } from "./EventAdmission.ts"
import { eventPageResponse, eventResponse, publishedResponse } from "./EventResponses.ts"
import { orNotFound, pathId } from "./Params.ts"
import { timeWindow } from "./TimeWindow.ts"

const eventId = pathId(EventId, "event")

/**
 * Events are answered as text around their stored `data` (EventResponses): `data` is stored and returned as the
 * publisher wrote it, and the decoded payload only validates it.
 */
export const EventsHttp = HttpApiBuilder.group(
  Api,
  "events",
  Effect.fn(function* (handlers) {
    const events = yield* Events
    const admit = makeEventAdmission(yield* EventTypes)
    return handlers
      .handle("publish", ({ payload }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const keyed = yield* Effect.serviceOption(KeyedRequest)
          const source = yield* RequestJson
          const data = source.member("data")
          // The payload decoded, so the body is JSON with a `data` member: its text is there.
          if (Option.isNone(data)) return yield* Effect.die(new Error("a decoded event has no data text"))
          if (isOperationalType(payload.type)) {
            return yield* new UnprocessableContent({
              detail: `Event types starting with "${operationalPrefix}" are reserved for codex-api's operational events.`
            })
          }
          // A replay answers what the first request answered (its ref keeps the Deprecation header): no admission.
          const run = Option.getOrUndefined(keyed)
          if (run?._tag === "Replay") {
            const again = yield* events.published(tenant.id, run.ref)
            if (Option.isNone(again)) {
              return yield* new Conflict({
                detail:
                  "The event published with this Idempotency-Key is past its retention and no longer stored: " +
                  "use a new key to publish again."
              })
            }
            return publishedResponse(again.value)
          }
          // The catalog's verdict on the parsed `data` (the stored text is the one sent, unchanged); none to ask when
          // the tenant neither is strict nor has types (as its cached key says: catalog changes forget that cache).
          const deprecation = tenant.catalogInUse ? yield* admit(tenant.id, payload.type, payload.data) : undefined
          const input: NewEvent = {
            ...payload,
            data: data.value,
            ...(deprecation === undefined ? {} : { deprecation })
          }
          if (run === undefined) return publishedResponse(yield* events.publish(tenant.id, input))
          const published = yield* events.publishKeyed(tenant.id, input, run.claim)
          if (Option.isNone(published)) return yield* run.claimLost
          return publishedResponse(published.value)
        })
      )
      .handle("list", ({ query }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const list = { name: "events", owner: tenant.id, isId: Schema.is(EventId) }
          const window = yield* timeWindow(query)
          const page = yield* events.list(tenant.id, yield* pageRequest(list, query), {
            ...window,
            type: Option.fromNullishOr(query.type)
          })

          return eventPageResponse(pageResponse(list)(page))
        })
      )
      .handle("get", ({ params }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const id = yield* eventId(params.id)
          return eventResponse(yield* events.get(tenant.id, id).pipe(orNotFound("event")))
        })
      )
      .handle("expunge", ({ params }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const id = yield* eventId(params.id)
          return eventResponse(yield* events.expunge(tenant.id, id).pipe(orNotFound("event")))
        })
      )
  })
)
