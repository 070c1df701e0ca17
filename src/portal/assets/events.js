import { useState } from "preact/hooks"
import { api, withQuery } from "./api.js"
import { DeliveryTable } from "./deliveries.js"
import { ErrorNote, html, isoFromLocal, Json, Loading, Pager, ScreenTitle, Time, useLoad, usePages } from "./ui.js"

/** Events: the tenant's stream, searched by type and time; its operational `codex.*` events; one event. */

/** codex-api's own events about the tenant's endpoints and deliveries (README, "Operational events"). */
const operationalTypes = [
  ["codex.endpoint.created", "an endpoint was added"],
  ["codex.endpoint.updated", "an endpoint was changed"],
  ["codex.endpoint.deleted", "an endpoint was deleted"],
  ["codex.endpoint.disabled", "an endpoint was disabled: by hand, by a 410 Gone, or after failing for days"],
  ["codex.endpoint.enabled", "a disabled endpoint was enabled"],
  ["codex.delivery.exhausted", "a delivery failed for good"],
  ["codex.delivery.recovered", "an endpoint that was failing succeeded again"],
  ["codex.test", "a test event sent to one endpoint"]
]

export const EventsScreen = ({ operational = false }) => {
  const initial = { type: operational ? "codex.*" : "", since: "", until: "" }
  const [form, setForm] = useState(initial)
  const [filters, setFilters] = useState(initial)
  const pages = usePages(
    (cursor) =>
      api(
        withQuery("/v1/events", {
          limit: 20,
          cursor,
          type: filters.type.trim(),
          since: isoFromLocal(filters.since),
          until: isoFromLocal(filters.until)
        })
      ),
    [filters]
  )
  const field = (name) => ({
    name,
    value: form[name],
    onInput: (e) => setForm({ ...form, [name]: e.currentTarget.value })
  })
  return html`
    <${ScreenTitle}>${operational ? "Operational events" : "Events"}<//>
    ${
      operational
        ? html`<p>What codex-api tells you about your endpoints and deliveries. An endpoint receives them only by naming them in its event types (<code>codex.*</code>).</p>
          <details><summary>The operational event types</summary>
            <dl>${operationalTypes.map(([type, what]) => html`<dt><code>${type}</code></dt><dd>${what}</dd>`)}</dl>
          </details>`
        : html`<p>Every event published to you, newest first. Operational <code>codex.*</code> events are listed only when asked for by type.</p>`
    }
    <form class="filters" aria-label="Search events" onSubmit=${(e) => {
      e.preventDefault()
      setFilters({ ...form })
    }}>
      <div class="grid">
        ${
          operational
            ? html`<label>Type
              <select ...${field("type")} onChange=${(e) => setForm({ ...form, type: e.currentTarget.value })}>
                <option value="codex.*">every operational event</option>
                ${operationalTypes.map(([type]) => html`<option value=${type}>${type}</option>`)}
              </select>
            </label>`
            : html`<label>Type <input ...${field("type")} placeholder="order.created or order.*" /></label>`
        }
        <label>Received from <input type="datetime-local" step="1" ...${field("since")} /></label>
        <label>Received before <input type="datetime-local" step="1" ...${field("until")} /></label>
      </div>
      <div class="actions">
        <button type="submit">Search</button>
        <button type="button" class="secondary" onClick=${pages.reload}>Refresh</button>
      </div>
    </form>
    ${pages.loading ? html`<${Loading} what="events" />` : null}
    <${ErrorNote} error=${pages.error} />
    ${
      pages.data === undefined
        ? null
        : pages.data.data.length === 0
          ? html`<p>No events.</p>`
          : html`<div class="overflow-auto"><table>
            <thead><tr><th scope="col">Received</th><th scope="col">Type</th><th scope="col">Id</th></tr></thead>
            <tbody>${pages.data.data.map(
              (event) => html`<tr>
                <td><${Time} iso=${event.createdAt} /></td>
                <td><code>${event.type}</code></td>
                <td><a href=${`#/events/${event.id}`}><code>${event.id}</code></a></td>
              </tr>`
            )}</tbody>
          </table></div>`
    }
    <${Pager} pages=${pages} what="events" />
  `
}

export const EventScreen = ({ id }) => {
  const event = useLoad(() => api(`/v1/events/${id}`), [id])
  const deliveries = useLoad(() => api(`/v1/events/${id}/deliveries`), [id])
  const e = event.data
  return html`
    <p><a href="#/events">← Events</a></p>
    <${ScreenTitle}>Event <code>${e?.type ?? id}</code><//>
    ${event.loading ? html`<${Loading} what="the event" />` : null}
    <${ErrorNote} error=${event.error} />
    ${
      e === undefined
        ? null
        : html`<dl class="facts">
          <dt>Id</dt><dd><code>${e.id}</code></dd>
          <dt>Occurred</dt><dd><${Time} iso=${e.occurredAt} /></dd>
          <dt>Received</dt><dd><${Time} iso=${e.createdAt} /></dd>
        </dl>
        <h2>Data</h2>
        ${e.expungedAt === null ? html`<${Json} value=${e.data} label="Event data" />` : html`<p>Expunged <${Time} iso=${e.expungedAt} />.</p>`}`
    }
    <h2>Deliveries</h2>
    <${ErrorNote} error=${deliveries.error} />
    ${deliveries.data === undefined ? null : html`<${DeliveryTable} deliveries=${deliveries.data.data} />`}
  `
}
