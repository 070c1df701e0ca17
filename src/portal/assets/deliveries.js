import { useEffect, useState } from "preact/hooks"
import { api, withQuery } from "./api.js"
import { session } from "./session.js"
import {
  announce,
  Badge,
  ErrorNote,
  html,
  isoFromLocal,
  Loading,
  Pager,
  ScreenTitle,
  ShortId,
  Time,
  useAction,
  useLoad,
  usePages
} from "./ui.js"

/** Deliveries: the tenant's, searched; one with every attempt, and a retry. */

const statuses = ["pending", "succeeded", "failed", "cancelled"]
const statusKind = { succeeded: "ok", failed: "bad", pending: "warn", cancelled: "" }

export const StatusBadge = ({ status }) => html`<${Badge} kind=${statusKind[status]}>${status}<//>`

export const DeliveryTable = ({ deliveries }) =>
  deliveries.length === 0
    ? html`<p>No deliveries.</p>`
    : html`<div class="overflow-auto"><table>
        <thead><tr>
          <th scope="col">Created</th><th scope="col">Status</th><th scope="col">Event</th>
          <th scope="col">Endpoint</th><th scope="col">Attempts</th><th scope="col">Last</th>
        </tr></thead>
        <tbody>${deliveries.map(
          (d) => html`<tr>
            <td><a href=${`#/deliveries/${d.id}`} aria-label=${`Delivery ${d.id}`}><${Time} iso=${d.createdAt} /></a></td>
            <td><${StatusBadge} status=${d.status} /></td>
            <td><a href=${`#/events/${d.eventId}`} aria-label=${`Event ${d.eventId}`}><${ShortId} id=${d.eventId} /></a></td>
            <td>${
              d.endpointDeleted
                ? html`<${ShortId} id=${d.endpointId} /> (deleted)`
                : html`<a href=${`#/endpoints/${d.endpointId}`} aria-label=${`Endpoint ${d.endpointId}`}><${ShortId} id=${d.endpointId} /></a>`
            }</td>
            <td>${d.attemptCount}</td>
            <td>${d.lastStatus ?? ""} ${d.lastError ?? ""}</td>
          </tr>`
        )}</tbody>
      </table></div>`

/**
 * A followed delivery is read again while it is pending after 1, 2, 4 … 30 seconds, 8 times at most: a send is
 * usually done within the first, and the reads count against the tenant's rate limit like any other request.
 */
const followDelayMs = (reads) => Math.min(1000 * 2 ** reads, 30_000)
const followReads = 8

/**
 * A delivery's attempts: time, duration, outcome, status, error and the start of the receiver's answer. With
 * `follow`, read again while the delivery is pending (a test send, a retry), so its attempts appear as they happen;
 * the Refresh button reads it at any time.
 */
export const DeliveryAttempts = ({ id, follow }) => {
  const [reads, setReads] = useState(0)
  const delivery = useLoad(() => api(`/v1/deliveries/${id}`), [id, reads])
  const pending = delivery.data?.status === "pending" || (delivery.data?.attempts.length ?? 0) === 0
  useEffect(() => {
    if (!follow || delivery.loading || !pending || reads >= followReads) return undefined
    const timer = setTimeout(() => setReads((n) => n + 1), followDelayMs(reads))
    return () => clearTimeout(timer)
  }, [follow, delivery.loading, pending, reads])
  const d = delivery.data
  if (d === undefined)
    return delivery.error ? html`<${ErrorNote} error=${delivery.error} />` : html`<${Loading} what="the delivery" />`
  return html`<div aria-live="polite">
    <p>Delivery <a href=${`#/deliveries/${d.id}`}><code>${d.id}</code></a>: <${StatusBadge} status=${d.status} />
      ${d.nextAttemptAt ? html` next attempt <${Time} iso=${d.nextAttemptAt} />` : null}</p>
    ${
      d.attempts.length === 0
        ? html`<p>No attempt yet.</p>`
        : html`<div class="overflow-auto"><table class="attempts">
          <caption>Attempts</caption>
          <thead><tr>
            <th scope="col">#</th><th scope="col">Started</th><th scope="col">Duration</th><th scope="col">Outcome</th>
            <th scope="col">Status</th><th scope="col">Error</th><th scope="col">Response</th>
          </tr></thead>
          <tbody>${d.attempts.map(
            (a) => html`<tr>
              <td>${a.attempt}</td>
              <td><${Time} iso=${a.startedAt} /></td>
              <td>${a.durationMs} ms</td>
              <td><${Badge} kind=${a.outcome === "succeeded" ? "ok" : "bad"}>${a.outcome}<//></td>
              <td>${a.statusCode ?? "—"}</td>
              <td>${a.error ?? ""}</td>
              <td>${a.responseExcerpt ? html`<pre class="excerpt" tabindex="0">${a.responseExcerpt}</pre>` : ""}</td>
            </tr>`
          )}</tbody>
        </table></div>`
    }
  </div>`
}

export const DeliveriesScreen = () => {
  const [form, setForm] = useState({ status: "", endpointId: "", eventType: "", since: "", until: "" })
  const [filters, setFilters] = useState(form)
  const pages = usePages(
    (cursor) =>
      api(
        withQuery("/v1/deliveries", {
          limit: 20,
          cursor,
          status: filters.status,
          endpointId: filters.endpointId.trim(),
          eventType: filters.eventType.trim(),
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
    <${ScreenTitle}>Deliveries<//>
    <form class="filters" aria-label="Search deliveries" onSubmit=${(e) => {
      e.preventDefault()
      setFilters({ ...form })
    }}>
      <div class="grid">
        <label>Status
          <select ...${field("status")} onChange=${(e) => setForm({ ...form, status: e.currentTarget.value })}>
            <option value="">any</option>
            ${statuses.map((s) => html`<option value=${s}>${s}</option>`)}
          </select>
        </label>
        <label>Event type <input ...${field("eventType")} placeholder="order.created" /></label>
        <label>Endpoint id <input ...${field("endpointId")} placeholder="ep_…" /></label>
      </div>
      <div class="grid">
        <label>Created from <input type="datetime-local" step="1" ...${field("since")} /></label>
        <label>Created before <input type="datetime-local" step="1" ...${field("until")} /></label>
      </div>
      <div class="actions">
        <button type="submit">Search</button>
        <button type="button" class="secondary" onClick=${pages.reload}>Refresh</button>
      </div>
    </form>
    ${pages.loading ? html`<${Loading} what="deliveries" />` : null}
    <${ErrorNote} error=${pages.error} />
    ${pages.data === undefined ? null : html`<${DeliveryTable} deliveries=${pages.data.data} />`}
    <${Pager} pages=${pages} what="deliveries" />
  `
}

export const DeliveryScreen = ({ id }) => {
  const [round, setRound] = useState(0)
  const retry = useAction(async () => {
    await api(`/v1/deliveries/${id}/retry`, { method: "POST" })
    announce("Delivery queued again.")
    setRound((n) => n + 1)
  })
  return html`
    <p><a href="#/deliveries">← Deliveries</a></p>
    <${ScreenTitle}>Delivery<//>
    <div class="actions">
      ${
        session.readOnly
          ? null
          : html`<button onClick=${() => retry.run()} aria-busy=${retry.busy} disabled=${retry.busy}>Retry delivery</button>`
      }
      <button class="secondary" onClick=${() => setRound((n) => n + 1)}>Refresh</button>
    </div>
    <${ErrorNote} error=${retry.error} />
    <${DeliveryAttempts} key=${`${id}/${round}`} id=${id} follow=${true} />
  `
}
