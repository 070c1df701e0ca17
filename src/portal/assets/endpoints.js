import { useState } from "preact/hooks"
import { api, withQuery } from "./api.js"
import { DeliveryAttempts, DeliveryTable } from "./deliveries.js"
import { session } from "./session.js"
import {
  announce,
  Badge,
  ErrorNote,
  html,
  isoFromLocal,
  Loading,
  Pager,
  percent,
  ScreenTitle,
  Time,
  useAction,
  useLoad,
  usePages
} from "./ui.js"

/** Endpoints: the list and a form to add one; one endpoint with its health, settings, secret and deliveries. */

const CircuitBadge = ({ health }) => {
  const kind = { closed: "ok", open: "bad", half_open: "warn" }[health.circuit] ?? ""
  return html`<${Badge} kind=${kind}>circuit ${health.circuit.replace("_", "-")}<//>`
}

const EnabledBadge = ({ enabled }) =>
  html`<${Badge} kind=${enabled ? "ok" : "bad"}>${enabled ? "enabled" : "disabled"}<//>`

/** The event types an endpoint takes: the catalog's as checkboxes (when there is a catalog), anything else as text. */
const EventTypesField = ({ value, onChange }) => {
  const catalog = useLoad(() => api(withQuery("/v1/event-types", { limit: 100 })), [])
  const types = (catalog.data?.data ?? []).filter((type) => !type.archived).map((type) => type.name)
  const others = value.filter((pattern) => !types.includes(pattern))
  const toggle = (name, checked) => onChange(checked ? [...value, name] : value.filter((pattern) => pattern !== name))
  return html`
    ${
      types.length === 0
        ? null
        : html`<fieldset>
          <legend>Event types from the catalog</legend>
          ${types.map(
            (name) => html`<label>
              <input type="checkbox" name="eventTypes" value=${name} checked=${value.includes(name)}
                onChange=${(e) => toggle(name, e.currentTarget.checked)} />
              ${name}
            </label>`
          )}
        </fieldset>`
    }
    <label>
      ${types.length === 0 ? "Event types" : "Other event types"}
      <input name="otherEventTypes" value=${others.join(", ")} placeholder="order.created, invoice.*"
        aria-describedby="event-types-help"
        onChange=${(e) => {
          const typed = e.currentTarget.value.split(/[\s,]+/).filter((pattern) => pattern !== "")
          onChange([...value.filter((pattern) => types.includes(pattern)), ...typed])
        }} />
      <small id="event-types-help">Comma-separated; <code>prefix.*</code> takes a family. None: every event.</small>
    </label>`
}

/** The fields of an endpoint, for adding one or changing one. */
const EndpointForm = ({ initial, submitLabel, onSubmit }) => {
  const [url, setUrl] = useState(initial?.url ?? "")
  const [description, setDescription] = useState(initial?.description ?? "")
  const [eventTypes, setEventTypes] = useState(initial?.eventTypes ?? [])
  const action = useAction(onSubmit)
  return html`<form onSubmit=${(e) => {
    e.preventDefault()
    action.run({ url, description, eventTypes })
  }}>
    <label>URL
      <input type="url" name="url" required value=${url} placeholder="https://example.com/webhooks"
        onInput=${(e) => setUrl(e.currentTarget.value)} />
    </label>
    <label>Description
      <input name="description" value=${description} onInput=${(e) => setDescription(e.currentTarget.value)} />
    </label>
    <${EventTypesField} value=${eventTypes} onChange=${setEventTypes} />
    <${ErrorNote} error=${action.error} />
    <button type="submit" aria-busy=${action.busy} disabled=${action.busy}>${submitLabel}</button>
  </form>`
}

export const EndpointsScreen = () => {
  const pages = usePages((cursor) => api(withQuery("/v1/endpoints", { limit: 20, cursor })), [])
  const add = async (fields) => {
    const created = await api("/v1/endpoints", { method: "POST", body: fields })
    announce(`Endpoint ${created.url} added.`)
    location.hash = `#/endpoints/${created.id}`
  }
  return html`
    <${ScreenTitle}>Endpoints<//>
    <p>The URLs your webhooks are sent to.</p>
    ${pages.loading ? html`<${Loading} what="endpoints" />` : null}
    <${ErrorNote} error=${pages.error} />
    ${
      pages.data === undefined
        ? null
        : pages.data.data.length === 0
          ? html`<p>No endpoints yet.</p>`
          : html`<div class="overflow-auto"><table>
            <thead><tr><th scope="col">URL</th><th scope="col">Description</th><th scope="col">Event types</th><th scope="col">State</th></tr></thead>
            <tbody>${pages.data.data.map(
              (endpoint) => html`<tr>
                <td><a href=${`#/endpoints/${endpoint.id}`}>${endpoint.url}</a></td>
                <td>${endpoint.description}</td>
                <td>${endpoint.eventTypes.length === 0 ? "all" : endpoint.eventTypes.join(", ")}</td>
                <td><${EnabledBadge} enabled=${endpoint.enabled} /> <${CircuitBadge} health=${endpoint.health} /></td>
              </tr>`
            )}</tbody>
          </table></div>`
    }
    <${Pager} pages=${pages} what="endpoints" />
    ${
      session.readOnly
        ? null
        : html`<section aria-labelledby="add-endpoint"><h2 id="add-endpoint">Add an endpoint</h2>
          <${EndpointForm} submitLabel="Add endpoint" onSubmit=${add} />
        </section>`
    }
  `
}

/** How the endpoint's deliveries went over the last 24 hours, and its circuit now. */
const Health = ({ id }) => {
  const stats = useLoad(() => api(`/v1/endpoints/${id}/stats`), [id])
  if (stats.loading && stats.data === undefined) return html`<${Loading} what="health" />`
  if (stats.error !== undefined) return html`<${ErrorNote} error=${stats.error} />`
  const s = stats.data
  return html`<section aria-labelledby="health"><h2 id="health">Health</h2>
    <dl class="facts">
      <dt>Circuit</dt><dd><${CircuitBadge} health=${s.health} />${s.health.openUntil ? html` until <${Time} iso=${s.health.openUntil} />` : null}</dd>
      <dt>Success rate (24 h)</dt><dd>${percent(s.successRate)} of ${s.attempts.total} attempts</dd>
      <dt>Duration p50 / p99</dt><dd>${s.durationMs.p50 ?? "—"} / ${s.durationMs.p99 ?? "—"} ms</dd>
      <dt>Last success</dt><dd><${Time} iso=${s.lastSuccessAt} /></dd>
      <dt>Last failure</dt><dd><${Time} iso=${s.lastFailureAt} /></dd>
    </dl>
    <button class="secondary" onClick=${stats.reload}>Refresh health</button>
  </section>`
}

const Secret = ({ id }) => {
  const [secret, setSecret] = useState(undefined)
  const reveal = useAction(async () => setSecret(await api(`/v1/endpoints/${id}/secret`)))
  const rotate = useAction(async () => {
    if (!confirm("Rotate the signing secret? The old one keeps signing for 24 hours.")) return
    setSecret(await api(`/v1/endpoints/${id}/secret/rotate`, { method: "POST" }))
    announce("Signing secret rotated.")
  })
  return html`<section aria-labelledby="secret"><h2 id="secret">Signing secret</h2>
    <p>Receivers verify each request's <code>webhook-signature</code> with it (Standard Webhooks).</p>
    ${
      secret === undefined
        ? null
        : html`<dl class="facts">
          <dt>Secret</dt><dd><code data-testid="secret">${secret.secret}</code></dd>
          ${
            secret.previousSecret === null
              ? null
              : html`<dt>Previous secret</dt><dd><code>${secret.previousSecret}</code>, until <${Time} iso=${secret.previousSecretExpiresAt} /></dd>`
          }
        </dl>`
    }
    <${ErrorNote} error=${reveal.error ?? rotate.error} />
    <div class="actions">
      <button class="secondary" onClick=${() => (secret === undefined ? reveal.run() : setSecret(undefined))} aria-busy=${reveal.busy}>
        ${secret === undefined ? "Reveal secret" : "Hide secret"}
      </button>
      ${session.readOnly ? null : html`<button class="contrast" onClick=${() => rotate.run()} aria-busy=${rotate.busy}>Rotate secret</button>`}
    </div>
  </section>`
}

/** Sends a `codex.test` event to the endpoint and follows its delivery's attempts. */
const TestSend = ({ id, disabled, onSent }) => {
  const [deliveryId, setDeliveryId] = useState(undefined)
  const send = useAction(async () => {
    const delivery = await api(`/v1/endpoints/${id}/test`, { method: "POST" })
    setDeliveryId(delivery.id)
    announce("Test event sent.")
    onSent()
  })
  return html`<section aria-labelledby="test"><h2 id="test">Test</h2>
    <button onClick=${() => send.run()} disabled=${disabled || send.busy} aria-busy=${send.busy}>Send test event</button>
    <${ErrorNote} error=${send.error} />
    ${deliveryId === undefined ? null : html`<${DeliveryAttempts} key=${deliveryId} id=${deliveryId} follow=${true} />`}
  </section>`
}

const Recover = ({ id }) => {
  const [since, setSince] = useState("")
  const recover = useAction(async () => {
    const { queued } = await api(`/v1/endpoints/${id}/recover`, {
      method: "POST",
      body: { since: isoFromLocal(since) }
    })
    announce(`${queued} failed ${queued === 1 ? "delivery" : "deliveries"} queued again.`)
  })
  return html`<form onSubmit=${(e) => {
    e.preventDefault()
    recover.run()
  }}>
    <label>Re-send every failed delivery created since
      <input type="datetime-local" name="since" required step="1" value=${since} onInput=${(e) => setSince(e.currentTarget.value)} />
    </label>
    <${ErrorNote} error=${recover.error} />
    <button type="submit" class="secondary" aria-busy=${recover.busy}>Recover failed deliveries</button>
  </form>`
}

export const EndpointScreen = ({ id }) => {
  const endpoint = useLoad(() => api(`/v1/endpoints/${id}`), [id])
  const deliveries = usePages((cursor) => api(withQuery(`/v1/endpoints/${id}/deliveries`, { limit: 10, cursor })), [id])
  const [editing, setEditing] = useState(false)
  const toggle = useAction(async () => {
    const enabled = !endpoint.data.enabled
    await api(`/v1/endpoints/${id}`, { method: "PATCH", body: { enabled } })
    announce(`Endpoint ${enabled ? "enabled" : "disabled"}.`)
    endpoint.reload()
  })
  const remove = useAction(async () => {
    if (!confirm("Delete this endpoint? Nothing more is sent to it.")) return
    await api(`/v1/endpoints/${id}`, { method: "DELETE" })
    announce("Endpoint deleted.")
    location.hash = "#/endpoints"
  })
  const save = async (fields) => {
    await api(`/v1/endpoints/${id}`, { method: "PATCH", body: fields })
    announce("Endpoint saved.")
    setEditing(false)
    endpoint.reload()
  }
  if (endpoint.data === undefined) {
    return html`<p><a href="#/endpoints">← Endpoints</a></p>
      ${endpoint.loading ? html`<${Loading} what="the endpoint" />` : html`<${ErrorNote} error=${endpoint.error} />`}`
  }
  const e = endpoint.data
  return html`
    <p><a href="#/endpoints">← Endpoints</a></p>
    <${ScreenTitle}>${e.description || "Endpoint"}<//>
    <p><code>${e.url}</code> <${EnabledBadge} enabled=${e.enabled} /></p>
    <p>Event types: ${e.eventTypes.length === 0 ? "all" : e.eventTypes.join(", ")}</p>
    ${
      session.readOnly
        ? null
        : html`<div class="actions">
          <button class="secondary" onClick=${() => setEditing(!editing)} aria-expanded=${editing}>Edit</button>
          <button class="secondary" onClick=${() => toggle.run()} aria-busy=${toggle.busy}>${e.enabled ? "Disable" : "Enable"}</button>
          <button class="secondary" onClick=${() => remove.run()} aria-busy=${remove.busy}>Delete</button>
        </div>
        <${ErrorNote} error=${toggle.error ?? remove.error} />`
    }
    ${editing ? html`<section aria-labelledby="edit"><h2 id="edit">Edit</h2><${EndpointForm} initial=${e} submitLabel="Save" onSubmit=${save} /></section>` : null}
    <${Health} id=${id} />
    ${session.readOnly ? null : html`<${TestSend} id=${id} disabled=${!e.enabled} onSent=${deliveries.reload} />`}
    <${Secret} id=${id} />
    <section aria-labelledby="recent"><h2 id="recent">Recent deliveries</h2>
      <${ErrorNote} error=${deliveries.error} />
      ${deliveries.data === undefined ? null : html`<${DeliveryTable} deliveries=${deliveries.data.data} />`}
      <div class="actions">
        <button class="secondary" onClick=${deliveries.reload}>Refresh deliveries</button>
      </div>
      <${Pager} pages=${deliveries} what="deliveries" />
      ${session.readOnly ? null : html`<${Recover} id=${id} />`}
    </section>
  `
}
