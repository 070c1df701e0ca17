import { api, withQuery } from "./api.js"
import { Badge, ErrorNote, html, Json, Loading, Pager, ScreenTitle, usePages } from "./ui.js"

/** The event-type catalog: the types this tenant publishes, each with its schema and examples. */
export const EventTypesScreen = () => {
  const pages = usePages((cursor) => api(withQuery("/v1/event-types", { limit: 20, cursor })), [])
  return html`
    <${ScreenTitle}>Event types<//>
    <p>The events you can subscribe to, with the JSON Schema of their <code>data</code> and examples.</p>
    ${pages.loading ? html`<${Loading} what="event types" />` : null}
    <${ErrorNote} error=${pages.error} />
    ${
      pages.data === undefined
        ? null
        : pages.data.data.length === 0
          ? html`<p>No event types are described yet.</p>`
          : pages.data.data.map(
              (type) => html`<details>
              <summary><code>${type.name}</code>
                ${type.deprecated ? html` <${Badge} kind="warn">deprecated<//>` : null}
                ${type.archived ? html` <${Badge} kind="bad">archived<//>` : null}
              </summary>
              ${type.description === "" ? null : html`<p>${type.description}</p>`}
              <h3>Schema</h3>
              ${type.schema === null ? html`<p>Any JSON object.</p>` : html`<${Json} value=${type.schema} label=${`Schema of ${type.name}`} />`}
              ${
                type.examples.length === 0
                  ? null
                  : html`<h3>Examples</h3>
                    ${type.examples.map((example, i) => html`<${Json} value=${example} label=${`Example ${i + 1} of ${type.name}`} />`)}`
              }
            </details>`
            )
    }
    <${Pager} pages=${pages} what="event types" />
  `
}
