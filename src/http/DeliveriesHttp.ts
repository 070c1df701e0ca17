import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { Deliveries } from "../../services/Deliveries.ts"
import { Api } from "../api/Api.ts"
import { CurrentTenant } from "../api/Security.ts"
import { DeliveryId, EventId } from "../domain/Ids.ts"
import { orNotFound, pathId } from "./Params.ts"

const eventId = pathId(EventId, "event")
const deliveryId = pathId(DeliveryId, "delivery")

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
          const data = yield* deliveries.listForEvent(tenant.id, id).pipe(Effect.orDie, orNotFound("event"))
          return { data }
        })
      )
      .handle("get", ({ params }) =>
        Effect.gen(function* () {
          const tenant = yield* CurrentTenant
          const id = yield* deliveryId(params.id)
          return yield* deliveries.get(tenant.id, id).pipe(Effect.orDie, orNotFound("delivery"))
        })
      )
  })
)
