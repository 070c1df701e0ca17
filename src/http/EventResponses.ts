import { HttpServerResponse } from "effect/http"
import type { Publication, StoredEvent } from "../domain/Event.ts"

/**
 * The events API's success bodies, written as text around each event's stored `data` text. The schema encoder would
 * `JSON.stringify` a parsed value, which loses member order, number text and escapes (`JSON.rawJSON` takes
 * primitives only). The members and their order are those of the contract's schemas (`Event`, `PublishedEvent`,
 * `EventPage`), which still describe these bodies in /openapi.json and decode them in clients.
 */

/** An expunged event's `data` is null. */
const eventJson = (event: StoredEvent): string =>
  `{"id":${JSON.stringify(event.id)},"type":${JSON.stringify(event.type)},"data":${event.data ?? "null"},` +
  `"occurredAt":${JSON.stringify(event.occurredAt)},"createdAt":${JSON.stringify(event.createdAt)},` +
  `"expungedAt":${JSON.stringify(event.expungedAt)}}`

const json = (body: string, status: number) =>
  HttpServerResponse.text(body, { status, contentType: "application/json" })

/** `PublishedEvent`, 202; with `Deprecation` (RFC 9745) when the type is deprecated in the catalog. */
export const publishedResponse = (publication: Publication) => {
  const response = json(
    `{"event":${eventJson(publication.event)},"deliveriesQueued":${publication.deliveriesQueued}}`,
    202
  )
  return publication.deprecation === undefined
    ? response
    : HttpServerResponse.setHeader(response, "deprecation", publication.deprecation)
}

/** `Event`, 200. */
export const eventResponse = (event: StoredEvent) => json(eventJson(event), 200)

/** `EventPage`, 200. */
export const eventPageResponse = (page: {
  readonly data: ReadonlyArray<StoredEvent>
  readonly nextCursor: string | null
}) => json(`{"data":[${page.data.map(eventJson).join(",")}],"nextCursor":${JSON.stringify(page.nextCursor)}}`, 200)
