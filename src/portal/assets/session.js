/**
 * The portal session: its token arrives in the URL's fragment (`/portal#token=cps_...`), which browsers never send
 * to a server. It is moved to sessionStorage (this tab only, gone when it closes) and dropped from the address bar
 * at once, so it is not bookmarked, shared or kept in history. Where storage is refused — an iframe on another site,
 * under third-party storage blocking — it is kept in memory: the page works until it is reloaded.
 */
const tokenKey = "codex.portal.token"
const readOnlyKey = "codex.portal.readOnly"

const memory = new Map()
const storage = (() => {
  try {
    const store = window.sessionStorage
    store.getItem(tokenKey)
    return store
  } catch {
    return {
      getItem: (key) => memory.get(key) ?? null,
      setItem: (key, value) => memory.set(key, value),
      removeItem: (key) => memory.delete(key)
    }
  }
})()

const fragment = new URLSearchParams(location.hash.slice(1))
const fresh = fragment.get("token")
if (fresh !== null) {
  storage.setItem(tokenKey, fresh)
  storage.setItem(readOnlyKey, fragment.get("readOnly") === "1" ? "1" : "0")
  history.replaceState(null, "", `${location.pathname}${location.search}#/endpoints`)
}

const listeners = new Set()

export const session = {
  token: storage.getItem(tokenKey),
  /** Only what the page shows: the server refuses a read-only session's writes whatever this says. */
  readOnly: storage.getItem(readOnlyKey) === "1",
  /** The server refused the token (expired, revoked): forget it and tell the page. */
  end() {
    storage.removeItem(tokenKey)
    for (const listener of listeners) listener()
  },
  onEnd(listener) {
    listeners.add(listener)
    return () => listeners.delete(listener)
  }
}
