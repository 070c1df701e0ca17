/**
 * The ports a webhook URL may name (`WEBHOOK_ALLOWED_PORTS`): a comma-separated list of ports and inclusive ranges,
 * e.g. `80,443,1024-65535`. Below 1024 live the well-known services (SSH 22, SMTP 25, DNS 53, ...) that a tenant must
 * not make us talk to, even on a public address.
 */

export interface PortRange {
  readonly from: number
  readonly to: number
}

export type AllowedPorts = ReadonlyArray<PortRange>

/** 80 and 443 (the schemes' defaults) and every unprivileged port. */
export const defaultAllowedPorts: AllowedPorts = [
  { from: 80, to: 80 },
  { from: 443, to: 443 },
  { from: 1024, to: 65535 }
]

const portNumber = (text: string): number | undefined => {
  if (!/^\d{1,5}$/.test(text)) return undefined
  const port = Number(text)
  return port >= 1 && port <= 65535 ? port : undefined
}

/** Parses the list; a string is the error message. Blanks around items are ignored, empty items are not allowed. */
export const parseAllowedPorts = (raw: string): AllowedPorts | string => {
  const items = raw.split(",").map((item) => item.trim())
  const ranges: Array<PortRange> = []
  for (const item of items) {
    const dash = item.indexOf("-")
    const from = portNumber(dash === -1 ? item : item.slice(0, dash).trim())
    const to = dash === -1 ? from : portNumber(item.slice(dash + 1).trim())
    if (from === undefined || to === undefined || from > to) {
      return `expected a comma-separated list of ports (1-65535) and ranges like 1024-65535 (not one: "${item}")`
    }
    ranges.push({ from, to })
  }
  return ranges
}

export const formatAllowedPorts = (ports: AllowedPorts): string =>
  ports.map(({ from, to }) => (from === to ? `${from}` : `${from}-${to}`)).join(",")

export const isPortAllowed = (ports: AllowedPorts, port: number): boolean =>
  ports.some(({ from, to }) => port >= from && port <= to)

/** The port a URL connects to: its explicit port, else its scheme's default (WHATWG drops a default port it names). */
export const effectivePort = (url: URL): number => {
  if (url.port !== "") return Number(url.port)
  return url.protocol === "https:" ? 443 : 80
}
