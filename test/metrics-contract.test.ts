import { readFileSync } from "node:fs"
import { join } from "node:path"
import { assert, describe, it, layer } from "@effect/vitest"
import { Effect } from "effect"
import { packageRoot } from "../src/domain/PackageInfo.ts"
import { request } from "./support/http.ts"
import { type Exposition, samplesOf, scrape } from "./support/metrics.ts"
import { poll } from "./support/poll.ts"
import { testServer } from "./support/testServer.ts"

/**
 * What codex-api exports, held against what is written about it: README's metrics table, the alert rules and their
 * promtool unit tests, and the Grafana dashboard. Read from a real `GET /metrics` (with the process metrics).
 */

const readText = (...path: ReadonlyArray<string>) => readFileSync(join(packageRoot, ...path), "utf8")
const prometheusDir = ["infra", "observability", "prometheus"] as const

/** Labels a scrape adds to every series (Prometheus, or the Prometheus Operator's ServiceMonitor): not exported. */
const targetLabels: ReadonlySet<string> = new Set(["job", "instance", "namespace", "pod", "service", "endpoint"])

/** Series that alerts select but codex-api does not export: Prometheus's own and kube-state-metrics'. */
const isExternal = (name: string) => name === "up" || name.startsWith("kube_")

/** Labels with a closed set of values, all exported from the start: a test input must use one of them. */
const closedLabels: ReadonlySet<string> = new Set(["le", "outcome", "policy", "from", "to"])

// ---- the exposition ---------------------------------------------------------------------------------------------

interface Exported {
  /** Label names of the samples of each sample name (`http_request_duration_seconds_bucket` has `le`). */
  readonly labelNames: ReadonlyMap<string, ReadonlySet<string>>
  /** The values of each label of each sample name. */
  readonly labelValues: ReadonlyMap<string, ReadonlyMap<string, ReadonlySet<string>>>
}

const exportedOf = (exposition: Exposition): Exported => {
  const labelNames = new Map<string, Set<string>>()
  const labelValues = new Map<string, Map<string, Set<string>>>()
  for (const sample of exposition.samples) {
    const names = labelNames.get(sample.name) ?? new Set<string>()
    const values = labelValues.get(sample.name) ?? new Map<string, Set<string>>()
    for (const [label, value] of Object.entries(sample.labels)) {
      names.add(label)
      values.set(label, (values.get(label) ?? new Set<string>()).add(value))
    }
    labelNames.set(sample.name, names)
    labelValues.set(sample.name, values)
  }
  return { labelNames, labelValues }
}

/** The family a sample name belongs to: `x_bucket`, `x_sum` and `x_count` of a histogram `x` are `x`. */
const familyOf = (exposition: Exposition, sampleName: string): string => {
  const base = sampleName.replace(/_(bucket|sum|count)$/, "")
  return base !== sampleName && exposition.types.get(base) === "histogram" ? base : sampleName
}

const sameSet = (a: Iterable<string>, b: Iterable<string>) =>
  [...new Set(a)].sort().join(",") === [...new Set(b)].sort().join(",")

// ---- PromQL and the rule files ----------------------------------------------------------------------------------

interface Selector {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
}

/** `name{a="x",b=~"y"}`: the metric name and its matchers (values as written). */
const parseSelector = (text: string): Selector => {
  const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(.*)\})?$/.exec(text.trim())
  assert.isNotNull(match, `not a series selector: ${text}`)
  const labels: Record<string, string> = {}
  for (const pair of (match?.[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)) {
    labels[pair[1] ?? ""] = pair[2] ?? ""
  }
  return { name: match?.[1] ?? "", labels }
}

const promqlKeywords: ReadonlySet<string> = new Set(["and", "or", "unless", "bool", "offset", "by", "without", "on"])

/** Every metric an expression reads: selectors with their matchers, and bare names (recording rules). */
const referencesOf = (expr: string): ReadonlyArray<Selector> => {
  const selectors = [...expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{[^}]*\}/g)].map((m) => parseSelector(m[0]))
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ")
  const bare = [...stripped.matchAll(/(?<![\w.:$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()/g)]
    .map((m) => m[1] ?? "")
    .filter((name) => !promqlKeywords.has(name))
    .filter((name) => !selectors.some((s) => s.name === name))
    .map((name): Selector => ({ name, labels: {} }))
  return [...selectors, ...bare]
}

/**
 * The `expr` of every rule in alerts.yml (inline, or a `|` block: the lines indented deeper than the key), with the
 * rule's name. Checked against the number of rules, so a layout this does not read fails loudly.
 */
const ruleExpressions = (yaml: string) => {
  const lines = yaml.split("\n")
  const rules: Array<{ readonly rule: string; readonly expr: string }> = []
  let rule = ""
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? ""
    const named = /^\s*- (alert|record): (\S+)\s*$/.exec(line)
    if (named !== null) rule = named[2] ?? ""
    const expr = /^(\s*)expr: ?(.*)$/.exec(line)
    if (expr === null) continue
    const indent = (expr[1] ?? "").length
    let text = expr[2] ?? ""
    if (/^[|>]-?$/.test(text.trim())) {
      const block: Array<string> = []
      const deeper = (next: string) => next.trim() !== "" && next.length - next.trimStart().length > indent
      while (i + 1 < lines.length && deeper(lines[i + 1] ?? "")) {
        i++
        block.push((lines[i] ?? "").trim())
      }
      text = block.join(" ")
    }
    rules.push({ rule, expr: text })
  }
  const declared = lines.filter((l) => /^\s*- (alert|record): /.test(l)).length
  assert.strictEqual(rules.length, declared, "one expr per rule")
  return rules
}

/** The `series` of every `input_series` of alerts.test.yml (each written `- series: '<selector>'`). */
const testInputSeries = (yaml: string): ReadonlyArray<Selector> => {
  const found = [...yaml.matchAll(/^\s*- series: '([^']*)'\s*$/gm)].map((m) => parseSelector(m[1] ?? ""))
  assert.strictEqual(found.length, (yaml.match(/^\s*- series:/gm) ?? []).length, "every series single-quoted")
  assert.isAbove(found.length, 0)
  return found
}

/** The `expr` of every target of every panel of the dashboard. */
const dashboardExpressions = (json: string): ReadonlyArray<{ readonly panel: string; readonly expr: string }> => {
  const dashboard = JSON.parse(json) as {
    readonly panels: ReadonlyArray<{
      readonly title: string
      readonly targets?: ReadonlyArray<{ readonly expr?: string }>
    }>
  }
  return dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr ?? "" })))
}

// ---- README -----------------------------------------------------------------------------------------------------

interface DocumentedMetric {
  /** The name, or a prefix ending in `_` for `process_*`. */
  readonly name: string
  readonly prefix: boolean
  readonly type: string
  /** Label names, each with its documented values (empty when the values are not a listed set). */
  readonly labels: ReadonlyMap<string, ReadonlyArray<string>>
}

/** The rows of the table under README's "### Metrics". */
const readmeMetrics = (readme: string): ReadonlyArray<DocumentedMetric> => {
  const start = readme.indexOf("\n### Metrics\n")
  assert.isAtLeast(start, 0, "README has a ### Metrics section")
  const section = readme.slice(start + 1, readme.indexOf("\n### ", start + 1))
  const rows = section.split("\n").filter((l) => l.startsWith("| `"))
  return rows.flatMap((row) => {
    const [nameCell = "", type = "", labelCell = ""] = row
      .split("|")
      .slice(1)
      .map((c) => c.trim())
    const labels = new Map<string, Array<string>>()
    let unassigned: Array<string> = []
    for (const token of labelCell.matchAll(/`([^`]+)`|\(([^)]*)\)/g)) {
      if (token[1] !== undefined) {
        labels.set(token[1], [])
        unassigned.push(token[1])
      } else {
        const values = [...(token[2] ?? "").matchAll(/`([^`]+)`/g)].map((v) => v[1] ?? "")
        for (const name of unassigned) labels.set(name, values)
        unassigned = []
      }
    }
    return [...nameCell.matchAll(/`([^`]+)`/g)].map((m): DocumentedMetric => {
      const name = m[1] ?? ""
      return { name: name.replace(/\*$/, ""), prefix: name.endsWith("*"), type, labels }
    })
  })
}

// ---- the tests --------------------------------------------------------------------------------------------------

/** Short-lived garbage, enough for the young generation to be collected at least once. */
const makeGarbage = Effect.sync(() => {
  let kept = 0
  for (let i = 0; i < 200_000; i++) kept += new Array<number>(16).fill(i).length
  return kept
})

/**
 * A scrape after a few requests (so the per-route series exist) and a garbage collection (prom-client's GC histogram
 * has a sample per kind only once one ran), with the process metrics on.
 */
const liveScrape = Effect.gen(function* () {
  assert.strictEqual((yield* request("/livez")).status, 200)
  assert.strictEqual((yield* request("/no/such/route")).status, 404)
  return yield* poll(
    "a garbage collection in the scrape",
    // Garbage first: the collection the scrape waits for has to be provoked.
    Effect.andThen(makeGarbage, scrape),
    (exposition) => samplesOf(exposition, "nodejs_gc_duration_seconds_count").length > 0,
    {
      show: (exposition) =>
        exposition.text
          .split("\n")
          .filter((l) => l.startsWith("nodejs_gc"))
          .join("\n")
    }
  )
})

layer(testServer(), { excludeTestServices: true })("what /metrics exports, against what is written about it", (it) => {
  it.effect(
    "README's metrics table lists exactly the exported families, with their types, labels and label values",
    () =>
      Effect.gen(function* () {
        const exposition = yield* liveScrape
        const exported = exportedOf(exposition)
        const documented = readmeMetrics(readText("README.md"))
        assert.isAbove(documented.length, 10)

        for (const family of exposition.types.keys()) {
          const row = documented.find((d) => (d.prefix ? family.startsWith(d.name) : family === d.name))
          assert.isDefined(row, `${family} is exported but not in README's metrics table`)
        }
        for (const doc of documented) {
          if (doc.prefix) {
            assert.isTrue(
              [...exposition.types.keys()].some((f) => f.startsWith(doc.name)),
              `${doc.name}* exported`
            )
            continue
          }
          const type = exposition.types.get(doc.name)
          assert.strictEqual(type, doc.type, `${doc.name}: documented as ${doc.type}, exported as ${type ?? "nothing"}`)
          const sampleNames =
            type === "histogram" ? ["_bucket", "_sum", "_count"].map((s) => `${doc.name}${s}`) : [doc.name]
          const names = new Set(sampleNames.flatMap((s) => [...(exported.labelNames.get(s) ?? [])]))
          names.delete("le")
          assert.isTrue(
            sameSet(names, doc.labels.keys()),
            `${doc.name}: labels ${[...names]} vs README ${[...doc.labels.keys()]}`
          )
          for (const [label, values] of doc.labels) {
            if (values.length === 0) continue
            const seen = sampleNames.flatMap((s) => [...(exported.labelValues.get(s)?.get(label) ?? [])])
            assert.isTrue(
              sameSet(seen, values),
              `${doc.name}{${label}}: exported ${[...new Set(seen)]}, README ${values}`
            )
          }
        }
      })
  )

  it.effect("every promtool test input series is shaped as exported: name, label names, closed label values", () =>
    Effect.gen(function* () {
      const exposition = yield* liveScrape
      const exported = exportedOf(exposition)
      const inputs = testInputSeries(readText(...prometheusDir, "alerts.test.yml"))
      const checked = inputs.filter((s) => !isExternal(s.name))
      assert.isAbove(checked.length, 10)
      for (const series of checked) {
        const shown = `${series.name}${JSON.stringify(series.labels)}`
        const names = exported.labelNames.get(series.name)
        assert.isDefined(names, `${shown}: no sample ${series.name} in /metrics`)
        const own = Object.keys(series.labels).filter((l) => !targetLabels.has(l))
        assert.isTrue(sameSet(own, names ?? []), `${shown}: labels ${own} vs exported ${[...(names ?? [])]}`)
        const family = familyOf(exposition, series.name)
        if (family !== series.name) assert.strictEqual(exposition.types.get(family), "histogram", shown)
        if (series.name.endsWith("_total")) assert.strictEqual(exposition.types.get(series.name), "counter", shown)
        for (const label of own.filter((l) => closedLabels.has(l))) {
          const values = exported.labelValues.get(series.name)?.get(label) ?? new Set<string>()
          assert.isTrue(values.has(series.labels[label] ?? ""), `${shown}: ${label} is one of ${[...values]}`)
        }
      }
    })
  )

  it.effect("every metric and label the alert rules and the dashboard select is exported; every alert is tested", () =>
    Effect.gen(function* () {
      const exposition = yield* liveScrape
      const exported = exportedOf(exposition)
      const alertsYml = readText(...prometheusDir, "alerts.yml")
      const rules = ruleExpressions(alertsYml)
      const recorded = new Set([...alertsYml.matchAll(/^\s*- record: (\S+)\s*$/gm)].map((m) => m[1] ?? ""))
      const dashboard = dashboardExpressions(
        readText("infra", "observability", "grafana", "dashboards", "codex-api.json")
      )
      assert.isAbove(dashboard.length, 10)
      const uses = [
        ...rules.map((r) => ({ where: `alerts.yml ${r.rule}`, expr: r.expr })),
        ...dashboard.map((d) => ({ where: `dashboard panel "${d.panel}"`, expr: d.expr }))
      ]
      for (const { where, expr } of uses) {
        const references = referencesOf(expr)
        assert.isNotEmpty(references, `${where}: ${expr}`)
        for (const { name, labels } of references) {
          if (isExternal(name) || recorded.has(name)) continue
          const names = exported.labelNames.get(name)
          assert.isDefined(names, `${where} reads ${name}, which /metrics does not export`)
          for (const label of Object.keys(labels)) {
            assert.isTrue(
              targetLabels.has(label) || (names?.has(label) ?? false),
              `${where}: ${name} has no label ${label}`
            )
          }
        }
      }

      const tests = readText(...prometheusDir, "alerts.test.yml")
      for (const alert of [...alertsYml.matchAll(/^\s*- alert: (\S+)\s*$/gm)].map((m) => m[1] ?? "")) {
        assert.include(tests, `alertname: ${alert}\n`, `${alert} has a promtool test`)
      }
    })
  )
})

describe("the readers of this file", () => {
  it.effect(
    "PromQL: selectors, their matchers and bare names are found; functions, keywords, grouping labels are not",
    () =>
      Effect.sync(() => {
        const refs = referencesOf(
          'histogram_quantile(0.99, sum by (le) (rate(a_bucket{job="x",route!~"/livez|/m"}[5m]))) > 1e-9 and on(instance) rec:b:c > bool 2'
        )
        assert.deepStrictEqual(
          refs.map((r) => [r.name, Object.keys(r.labels)]),
          [
            ["a_bucket", ["job", "route"]],
            ["rec:b:c", []]
          ]
        )
      })
  )
})
