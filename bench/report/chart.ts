/** A dependency-free SVG bar chart of scenarios (a) and (b): requests per second per server. */
import type { Results } from "./markdown.ts"

const xmlEscape = (s: string) => s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")

export const chartSvg = (r: Results): string => {
  const groups = [
    { title: "(a) GET /livez", figures: r.ops },
    { title: "(b) GET /v1/events?limit=20", figures: r.list }
  ]
  const names = [...new Set(groups.flatMap((g) => Object.keys(g.figures)))]
  const colours = ["#2563eb", "#6b7280", "#059669", "#d97706", "#7c3aed"]
  const barHeight = 18
  const label = 130
  const width = 640
  const plot = width - label - 90
  const lines: Array<string> = []
  let y = 30
  for (const group of groups) {
    const max = Math.max(1, ...Object.values(group.figures).map((f) => f.requestsPerSecond))
    lines.push(`<text x="10" y="${y}" font-weight="bold">${xmlEscape(group.title)} — requests/s</text>`)
    y += 12
    for (const [i, name] of names.entries()) {
      const f = group.figures[name]
      if (f === undefined) continue
      const w = Math.max(1, Math.round((f.requestsPerSecond / max) * plot))
      lines.push(
        `<text x="${label - 6}" y="${y + 13}" text-anchor="end">${xmlEscape(name)}</text>`,
        `<rect x="${label}" y="${y}" width="${w}" height="${barHeight}" fill="${colours[i % colours.length]}"/>`,
        `<text x="${label + w + 6}" y="${y + 13}">${f.requestsPerSecond}</text>`
      )
      y += barHeight + 6
    }
    y += 24
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...lines,
    `<text x="10" y="${y - 8}" fill="#6b7280">${xmlEscape(`${r.meta.date.slice(0, 10)}, Node ${r.meta.node}, ${r.meta.connections} connections, median of ${r.meta.rounds} × ${r.meta.durationSeconds} s`)}</text>`,
    "</svg>",
    ""
  ].join("\n")
}
