import { Console, Effect, Option, Stdio } from "effect"
import pc from "picocolors"
import { env } from "./Profile.ts"
import { ColorFlag, JsonFlag } from "./Settings.ts"

/** picocolors' functions, on or off. */
export type Colors = ReturnType<typeof pc.createColors>

/** How this command line prints: JSON for scripts or text for people, with colours or not. */
export interface Output {
  readonly json: boolean
  readonly colors: Colors
}

/** Colours: `--color`/`--no-color`, else off with NO_COLOR, on with FORCE_COLOR, else on a terminal. */
export const output = Effect.gen(function* () {
  const json = yield* JsonFlag
  const flag = yield* ColorFlag
  const force = yield* env("FORCE_COLOR")
  const enabled = Option.isSome(flag)
    ? flag.value
    : (yield* env("NO_COLOR")) !== undefined
      ? false
      : force !== undefined && force !== "0"
        ? true
        : yield* (yield* Stdio.Stdio).stdoutIsTerminal
  return { json, colors: pc.createColors(enabled) } satisfies Output
})

export const printJson = (value: unknown) => Console.log(JSON.stringify(value, null, 2))

/** A column of a table: its header and each row's text (colour added after the widths are measured). */
export interface Column<Row> {
  readonly header: string
  readonly text: (row: Row) => string
  readonly color?: (text: string, row: Row) => string
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escapes are what it strips.
const visibleLength = (text: string) => text.replace(/\u001b\[[0-9;]*m/g, "").length

/** Rows under a header, columns padded to their widest cell; `empty` when there are no rows. */
export const printTable = <Row>(
  out: Output,
  columns: ReadonlyArray<Column<Row>>,
  rows: ReadonlyArray<Row>,
  empty: string
) => {
  if (rows.length === 0) return Console.log(out.colors.dim(empty))
  const cells = rows.map((row) => columns.map((column) => column.text(row)))
  const widths = columns.map((column, i) =>
    Math.max(column.header.length, ...cells.map((row) => (row[i] ?? "").length))
  )
  const line = (texts: ReadonlyArray<string>) =>
    texts
      .map((text, i) => (i === texts.length - 1 ? text : text + " ".repeat((widths[i] ?? 0) - visibleLength(text))))
      .join("  ")
      .trimEnd()
  const header = line(columns.map((column) => out.colors.bold(column.header)))
  const body = rows.map((row, r) =>
    line(columns.map((column, i) => (column.color ?? ((text: string) => text))(cells[r]?.[i] ?? "", row)))
  )
  return Console.log([header, ...body].join("\n"))
}

/** `Label  value` lines, labels padded. */
export const printFields = (out: Output, fields: ReadonlyArray<readonly [string, string]>) => {
  const width = Math.max(...fields.map(([label]) => label.length))
  return Console.log(fields.map(([label, value]) => `${out.colors.dim(label.padEnd(width))}  ${value}`).join("\n"))
}

/** After a page: how to get the next one (on stderr, so stdout stays the table). */
export const printNextCursor = (nextCursor: string | null) =>
  nextCursor === null ? Effect.void : Console.error(`More: add --cursor ${nextCursor}`)

/** A delivery status or an attempt outcome in its colour. */
export const statusColor = (colors: Colors, status: string): string => {
  switch (status) {
    case "succeeded":
      return colors.green(status)
    case "pending":
      return colors.yellow(status)
    case "cancelled":
      return colors.dim(status)
    default:
      return colors.red(status)
  }
}

/** `—` for a missing value. */
export const orDash = (value: string | number | null | undefined): string =>
  value === null || value === undefined || value === "" ? "—" : String(value)
