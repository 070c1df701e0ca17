import { Effect, Option, Schema } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import {
  Deliveries,
  type EndpointDeleted,
  type EndpointDisabled,
  type EventExpunged
} from "../../services/Deliveries.ts"
import { Api } from "../api/Api.ts"
import { Conflict } from "../api/Problems.ts"
import { CurrentTenant } from "../api/Security.ts"
import { DeliveryId, EndpointId, EventId } from "../domain/Ids.ts"
import { pageRequest, pageResponse } from "./Cursor.ts"
import { orNotFound, pathId } from "./Params.ts"
import { timeWindow } from "./TimeWindow.ts"

const eventId = pathId(EventId, "event")
const endpointId = pathId(EndpointId, "endpoint")
const deliveryId = pathId(DeliveryId, "delivery")

const disabledConflict = (_: EndpointDisabled) =>
  new Conflict({ detail: "The endpoint is disabled: enable it (PATCH /v1/endpoints/{id}) before sending again." })

/** 409, not 404: the delivery exists and stays readable; it is the sending that can no longer happen. */
const deletedConflict = (error: EndpointDeleted) =>
  new Conflict({
    detail: `The endpoint of this delivery (${error.endpointId}) was deleted: it can no longer be sent.`
  })

/** 409 as well: the delivery stays readable, but its event's data, which it would send, is gone for good. */
const expungedConflict = (error: EventExpunged) =>
  new Conflict({
    detail: `The data of this delivery's event (${error.eventId}) was expunged: there is nothing left to send.`
  })

export const DeliveriesHttp = HttpApiBuilder.group(
  Api,
  "deliveries",
  Effect.fn(function* (handlers) {
    const deliveries = yield* Deliveries
    return handlers
      .handle("listForEvent", ({ params }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const id = yield* eventId(params.id)
          const data = yield* deliveries.listForEvent(tenant.id, id).pipe(orNotFound("event"))
          return { data }
        })
      )
      .handle("listForEndpoint", ({ params, query }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const id = yield* endpointId(params.id)
          const list = { name: `deliveries:${id}`, owner: tenant.id, isId: Schema.is(DeliveryId) }
          const page = yield* deliveries
            .listForEndpoint(tenant.id, id, yield* pageRequest(list, query), Option.fromNullishOr(query.status))
            .pipe(orNotFound("endpoint"))
          return pageResponse(list)(page)
        })
      )
      .handle("get", ({ params }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const id = yield* deliveryId(params.id)
          return yield* deliveries.get(tenant.id, id).pipe(orNotFound("delivery"))
        })
      )
      .handle("search", ({ query }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const list = { name: "deliveries", owner: tenant.id, isId: Schema.is(DeliveryId) }
          const window = yield* timeWindow(query)
          const page = yield* deliveries.search(
            tenant.id,
            {
              ...window,
              status: Option.fromNullishOr(query.status),
              endpointId: Option.fromNullishOr(query.endpointId),
              eventType: Option.fromNullishOr(query.eventType)
            },
            yield* pageRequest(list, query)
          )
          return pageResponse(list)(page)
        })
      )
      .handle("retry", ({ params }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const id = yield* deliveryId(params.id)
          return yield* deliveries.retry(tenant.id, id).pipe(
            Effect.catchTag("EndpointDisabled", (e) => Effect.fail(disabledConflict(e))),
            Effect.catchTag("EndpointDeleted", (e) => Effect.fail(deletedConflict(e))),
            Effect.catchTag("EventExpunged", (e) => Effect.fail(expungedConflict(e))),
            orNotFound("delivery")
          )
        })
      )
      .handle("recover", ({ params, payload }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const id = yield* endpointId(params.id)
          const queued = yield* deliveries.recover(tenant.id, id, new Date(payload.since)).pipe(
            Effect.catchTag("EndpointDisabled", (e) => Effect.fail(disabledConflict(e))),
            orNotFound("endpoint")
          )
          return { queued }
        })
      )
      .handle("sendTest", ({ params }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const id = yield* endpointId(params.id)
          return yield* deliveries.sendTest(tenant.id, id).pipe(
            Effect.catchTag("EndpointDisabled", (e) => Effect.fail(disabledConflict(e))),
            orNotFound("endpoint")
          )
        })
      )
  })
)
