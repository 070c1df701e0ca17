import { Duration, Option } from "effect"

/**
 * Durations as operators write them in environment variables: the shorthand of Go, Kubernetes, Prometheus and
 * systemd (`30s`, `500ms`, `5m`, `1h`, `2d`, combined as `1m30s` or `1h 30m`, decimals as `1.5s`), and Effect's own
 * `30 seconds` / `500 millis` (every form `Duration.fromInput` reads, so values written before stay valid).
 * A bare number has no unit and is refused, except `0`, which is zero in any unit.
 */

const second = 1000
const minute = 60 * second
const hour = 60 * minute
const day = 24 * hour

/** Unit names in milliseconds: the shorthand and the words (so `1 minute 30 seconds` combines too). */
const millisPerUnit: ReadonlyMap<string, number> = new Map(
  Object.entries({
    ms: 1,
    milli: 1,
    millis: 1,
    millisecond: 1,
    milliseconds: 1,
    s: second,
    sec: second,
    secs: second,
    second: second,
    seconds: second,
    m: minute,
    min: minute,
    mins: minute,
    minute: minute,
    minutes: minute,
    h: hour,
    hr: hour,
    hrs: hour,
    hour: hour,
    hours: hour,
    d: day,
    day: day,
    days: day,
    w: 7 * day,
    week: 7 * day,
    weeks: 7 * day
  })
)

/** One `<number><unit>` part, blanks allowed before it and between the number and its unit. */
const part = /\s*(\d+(?:\.\d+)?)\s*([a-z]+)/y

/** The shorthand forms: one or more parts, summed; `-` in front negates the whole. */
const parseShorthand = (text: string): Duration.Duration | undefined => {
  const negative = text.startsWith("-")
  const body = negative ? text.slice(1) : text
  let millis = 0
  let parts = 0
  part.lastIndex = 0
  while (part.lastIndex < body.length) {
    const match = part.exec(body)
    if (match === null) return undefined
    const [, amount = "", unit = ""] = match
    const factor = millisPerUnit.get(unit)
    if (factor === undefined) return undefined
    millis += Number(amount) * factor
    parts++
  }
  return parts === 0 ? undefined : Duration.millis(negative ? -millis : millis)
}

/** Reads a duration setting; undefined when the text is none of the accepted forms. */
export const parseDurationText = (raw: string): Duration.Duration | undefined => {
  const text = raw.trim()
  if (text === "0") return Duration.zero
  // The cast only widens: fromInput accepts any string and answers None for what it cannot read.
  const effectForm = Duration.fromInput(text as Duration.Input)
  return Option.isSome(effectForm) ? effectForm.value : parseShorthand(text)
}

/** What the error of an unreadable duration setting says it expected. */
export const durationTextExpected = "a duration such as 30s, 500ms, 5m, 1h30m or 30 seconds"
