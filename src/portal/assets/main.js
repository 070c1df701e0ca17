import { render } from "preact"
import { useEffect, useState } from "preact/hooks"
import { DeliveriesScreen, DeliveryScreen } from "./deliveries.js"
import { EndpointScreen, EndpointsScreen } from "./endpoints.js"
import { EventTypesScreen } from "./event-types.js"
import { EventScreen, EventsScreen } from "./events.js"
import { session } from "./session.js"
import { Announcer, html } from "./ui.js"

/**
 * The portal: a navigation bar and one screen at a time, chosen by the URL's fragment (`#/endpoints/ep_...`), so
 * every screen is a real link (back button, new tab, keyboard). The token was taken from the fragment before this
 * runs (session.js).
 */

const screens = [
  { path: "endpoints", title: "Endpoints" },
  { path: "deliveries", title: "Deliveries" },
  { path: "events", title: "Events" },
  { path: "event-types", title: "Event types" },
  { path: "operational", title: "Operational events" }
]

const routeOf = (hash) => {
  const [path = "endpoints", id] = hash.replace(/^#\/?/, "").split("/")
  return { path: path === "" ? "endpoints" : path, id: id === undefined ? undefined : decodeURIComponent(id) }
}

const Screen = ({ route }) => {
  const { path, id } = route
  if (path === "endpoints")
    return id === undefined ? html`<${EndpointsScreen} />` : html`<${EndpointScreen} id=${id} />`
  if (path === "deliveries")
    return id === undefined ? html`<${DeliveriesScreen} />` : html`<${DeliveryScreen} id=${id} />`
  if (path === "events") return id === undefined ? html`<${EventsScreen} />` : html`<${EventScreen} id=${id} />`
  if (path === "operational") return html`<${EventsScreen} operational=${true} />`
  if (path === "event-types") return html`<${EventTypesScreen} />`
  return html`<h1>Not found</h1><p>No such screen. <a href="#/endpoints">Endpoints</a></p>`
}

const Ended = () => html`<main class="container">
  <h1>Your session has ended</h1>
  <p>This webhooks portal link has expired or was revoked. Open the portal again from the application that sent you here.</p>
</main>`

const App = () => {
  const [route, setRoute] = useState(routeOf(location.hash))
  const [ended, setEnded] = useState(session.token === null)
  useEffect(() => {
    const onHash = () => setRoute(routeOf(location.hash))
    addEventListener("hashchange", onHash)
    const unsubscribe = session.onEnd(() => setEnded(true))
    return () => {
      removeEventListener("hashchange", onHash)
      unsubscribe()
    }
  }, [])
  if (ended) return html`<${Ended} />`
  return html`
    <a class="skip" href="#main" onClick=${(e) => {
      e.preventDefault()
      document.getElementById("main")?.focus()
    }}>Skip to content</a>
    <header class="container">
      <nav aria-label="Portal">
        <ul><li><strong>Webhooks</strong>${session.readOnly ? html` <mark class="badge">read-only</mark>` : null}</li></ul>
        <ul>
          ${screens.map(
            (screen) => html`<li>
              <a href=${`#/${screen.path}`} aria-current=${route.path === screen.path ? "page" : undefined}>${screen.title}</a>
            </li>`
          )}
        </ul>
      </nav>
    </header>
    <main class="container" id="main" tabindex="-1">
      <${Screen} key=${`${route.path}/${route.id ?? ""}`} route=${route} />
    </main>
    <footer class="container"><${Announcer} /></footer>
  `
}

render(html`<${App} />`, document.getElementById("portal"))
