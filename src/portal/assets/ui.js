import htm from "htm"
import { h } from "preact"
import { useCallback, useEffect, useRef, useState } from "preact/hooks"

/** JSX-like templates without a compiler: html`<p>${text}</p>`. */
export const html = htm.bind(h)

// ---- announcements: one polite live region for the outcome of actions (screen readers hear them) ---------------
const announcers = new Set()
export const announce = (message) => {
  for (const announcer of announcers) announcer(message)
}
export const Announcer = () => {
  const [message, setMessage] = useState("")
  useEffect(() => {
    announcers.add(setMessage)
    return () => announcers.delete(setMessage)
  }, [])
  return html`<p class="announcer" role="status" aria-live="polite">${message}</p>`
}

// ---- loading ------------------------------------------------------------------------------------------------
/** Runs `load` when `deps` change (and on `reload()`): `{ data, error, loading, reload }`. */
export const useLoad = (load, deps) => {
  const [state, setState] = useState({ data: undefined, error: undefined, loading: true })
  const [round, setRound] = useState(0)
  useEffect(() => {
    let current = true
    setState((s) => ({ ...s, loading: true }))
    load().then(
      (data) => current && setState({ data, error: undefined, loading: false }),
      (error) => current && setState({ data: undefined, error, loading: false })
    )
    return () => {
      current = false
    }
  }, [...deps, round])
  const reload = useCallback(() => setRound((r) => r + 1), [])
  return { ...state, reload }
}

/**
 * A list the API pages with cursors (`nextCursor`): the cursors of the pages seen, so "Newer" goes back and "Older"
 * on. `load(cursor)` fetches one page; a change of `deps` (the filters) starts again from the newest.
 */
export const usePages = (load, deps) => {
  const [cursors, setCursors] = useState([undefined])
  useEffect(() => setCursors([undefined]), deps)
  const cursor = cursors[cursors.length - 1]
  const page = useLoad(() => load(cursor), [...deps, cursor])
  return {
    ...page,
    older: page.data?.nextCursor ? () => setCursors([...cursors, page.data.nextCursor]) : undefined,
    newer: cursors.length > 1 ? () => setCursors(cursors.slice(0, -1)) : undefined
  }
}

/** An action's state: `run(...)` it; `busy` meanwhile; its failure in `error`; its outcome announced. */
export const useAction = (action) => {
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState(undefined)
  const run = async (...args) => {
    setBusy(true)
    setError(undefined)
    try {
      return await action(...args)
    } catch (failure) {
      setError(failure)
      return undefined
    } finally {
      setBusy(false)
    }
  }
  return { run, busy, error }
}

// ---- small pieces -------------------------------------------------------------------------------------------
export const ErrorNote = ({ error }) =>
  error === undefined ? null : html`<p class="error" role="alert">${error.message ?? String(error)}</p>`

export const Loading = ({ what }) => html`<p aria-busy="true">Loading ${what}…</p>`

export const Time = ({ iso }) =>
  iso === null || iso === undefined
    ? html`<span>—</span>`
    : html`<time datetime=${iso}>${new Date(iso).toLocaleString()}</time>`

export const Json = ({ value, label }) =>
  html`<pre tabindex="0" aria-label=${label}><code>${JSON.stringify(value, null, 2)}</code></pre>`

export const Badge = ({ kind, children }) => html`<mark class=${`badge ${kind ?? ""}`}>${children}</mark>`

export const Pager = ({ pages, what }) =>
  pages.newer === undefined && pages.older === undefined
    ? null
    : html`<nav class="pager" aria-label=${`Pages of ${what}`}>
        <button class="secondary" disabled=${pages.newer === undefined} onClick=${pages.newer}>Newer</button>
        <button class="secondary" disabled=${pages.older === undefined} onClick=${pages.older}>Older</button>
      </nav>`

/** A heading that takes the focus when its screen opens, so a keyboard or screen reader user lands on it. */
export const ScreenTitle = ({ children }) => {
  const ref = useRef(null)
  useEffect(() => ref.current?.focus(), [])
  return html`<h1 tabindex="-1" ref=${ref}>${children}</h1>`
}

/** `<input type="datetime-local">`'s value (local time) as ISO 8601, or undefined when empty. */
export const isoFromLocal = (value) => (value === "" || value === undefined ? undefined : new Date(value).toISOString())

export const percent = (ratio) => (ratio === null || ratio === undefined ? "—" : `${Math.round(ratio * 1000) / 10}%`)

/** A long id, shortened for a table (`evt_…K9WZCT`): the whole id on hover, and in the link's name where it is one. */
export const ShortId = ({ id }) => html`<code title=${id}>${id.slice(0, id.indexOf("_") + 1)}…${id.slice(-6)}</code>`
