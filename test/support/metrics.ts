import { assert } from "@effect/vitest"
import { Effect } from "effect"
import type { Registry } from "prom-client"
import { poll } from "./poll.ts"
import { TestServer } from "./testServer.ts"

/** Reading `GET /metrics` of a running server the way Prometheus does: fetch the text, parse the exposition. */

export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

export interface Exposition {
  readonly text: string
  readonly samples: ReadonlyArray<Sample>
  /** `# TYPE` of each metric family: counter, gauge, histogram, summary, untyped. */
  readonly types: ReadonlyMap<string, string>
}

/** Parses the Prometheus text format 0.0.4 (what prom-client writes: no timestamps, no exemplars). */
export const parseExposition = (text: string): Exposition => {
  const samples: Array<Sample> = []
  const types = new Map<string, string>()
  for (const line of text.split("\n")) {
    if (line === "") continue
    const type = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (type !== null) {
      types.set(type[1] ?? "", type[2] ?? "")
      continue
    }
    if (line.startsWith("#")) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    assert.isNotNull(match, `not an exposition line: ${line}`)
    const labels: Record<string, string> = {}
    for (const pair of (match?.[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1] ?? ""] = pair[2] ?? ""
    }
    samples.push({ name: match?.[1] ?? "", labels, value: Number(match?.[3]) })
  }
  return { text, samples, types }
}

/** The samples of `name` whose labels include `labels`. */
export const samplesOf = (exposition: Exposition, name: string, labels: Readonly<Record<string, string>> = {}) =>
  exposition.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))

/** The sum of the matching samples' values (0 when there is none). */
export const sumOf = (exposition: Exposition, name: string, labels: Readonly<Record<string, string>> = {}) =>
  samplesOf(exposition, name, labels).reduce((sum, s) => sum + s.value, 0)

/**
 * The value of the one sample of `name` with exactly `labels` (no more, no fewer), as a series is written in
 * PromQL; undefined when there is none.
 */
export const seriesValue = (
  exposition: Exposition,
  name: string,
  labels: Readonly<Record<string, string>> = {}
): number | undefined => {
  const wanted = Object.keys(labels).length
  const found = samplesOf(exposition, name, labels).filter((s) => Object.keys(s.labels).length === wanted)
  assert.isAtMost(found.length, 1, `${name} ${JSON.stringify(labels)}`)
  return found[0]?.value
}

/** The value of the one unlabelled sample of `name`; undefined when the metric has no sample. */
export const gaugeOf = (exposition: Exposition, name: string): number | undefined => {
  const found = samplesOf(exposition, name)
  assert.isAtMost(found.length, 1, name)
  return found[0]?.value
}

/**
 * What a prom-client registry would answer a scrape with, parsed: for tests that hold the registry (`makeMetricsTest`)
 * rather than a server's `/metrics`.
 */
export const readRegistry = async (registry: Registry): Promise<Exposition> => parseExposition(await registry.metrics())

/** Fetches a `/metrics` URL (any port) and parses it; the scrape must answer 200 with the Prometheus content type. */
export const scrapeUrl = (url: string) =>
  Effect.promise(async () => {
    const response = await fetch(url, { signal: AbortSignal.timeout(10_000) })
    const text = await response.text()
    assert.strictEqual(response.status, 200, text)
    assert.strictEqual(response.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8")
    return parseExposition(text)
  })

/** `GET /metrics` of the test server, parsed. */
export const scrape = Effect.gen(function* () {
  const { baseUrl } = yield* TestServer
  return yield* scrapeUrl(`${baseUrl}/metrics`)
})

/**
 * Scrapes until `done` holds (every 50 ms), failing the test after `deadlineMs`; returns that scrape. For values that
 * change in the background (a delivery attempt, the outbox gauges' next read).
 */
export const scrapeUntil = (
  what: string,
  done: (exposition: Exposition) => boolean,
  deadlineMs = 10_000
): Effect.Effect<Exposition, never, TestServer> =>
  poll(what, scrape, done, {
    timeoutMs: deadlineMs,
    intervalMs: 50,
    // The samples a test waits on, without the runtime's and the latency histogram's.
    show: (exposition) =>
      `\n${exposition.text
        .split("\n")
        .filter((l) => !l.startsWith("#") && !/^(process|nodejs|http_request_duration)_/.test(l))
        .join("\n")}`
  })
