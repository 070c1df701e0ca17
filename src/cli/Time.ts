import { Effect, Option } from "effect"
import { UsageError } from "./Failure.ts"

const units: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/**
 * A time for `--since`/`--until`: ISO 8601 with an offset, as the API takes it, or a time ago (`90s`, `30m`, `2h`,
 * `7d`), turned into ISO 8601 from this machine's clock.
 */
export const sinceTime = (text: string): Effect.Effect<string, UsageError> =>
  Effect.suspend(() => {
    const ago = /^(\d+)([smhd])$/.exec(text.trim())
    if (ago?.[1] !== undefined && ago[2] !== undefined) {
      return Effect.succeed(new Date(Date.now() - Number(ago[1]) * (units[ago[2]] ?? 0)).toISOString())
    }
    return /^\d{4}-\d{2}-\d{2}T/.test(text) && !Number.isNaN(Date.parse(text))
      ? Effect.succeed(text)
      : Effect.fail(
          new UsageError({ message: `not a time: ${text} (ISO 8601 such as 2026-12-01T10:00:00Z, or 30m, 2h, 1d ago)` })
        )
  })

/** `sinceTime` of an optional flag. */
export const optionalTime = (text: Option.Option<string>): Effect.Effect<Option.Option<string>, UsageError> =>
  Effect.transposeOption(Option.map(text, sinceTime))
