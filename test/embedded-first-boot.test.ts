import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Logger } from "effect"
import { SqlClient } from "effect/sql"
import { startEmbeddedPostgres } from "../layers/EmbeddedPostgres.ts"
import { isInitialised } from "../layers/EmbeddedPostgresInit.ts"
import { jsonLogger } from "../layers/LoggerLive.ts"
import { makeMemorySink } from "../layers/LogSinkLive.ts"

/**
 * Issue 17, "Start-up and memory": a new embedded data directory is initialised (initdb) by a short-lived child
 * process, and this process opens it as every later start does; in process, initdb's temporary PGlite instance left
 * 40-110 MB behind (measured by bench/startup.ts, not here). Checked: the directory is initialised only on the first
 * start, which says so in one log line; what it holds survives to the next start; a child that fails is a clear error.
 */

const tempDir = () =>
  Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "codex-first-boot-"))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

/** Starts the embedded database on `dataDir`, runs `use` on it, closes it; with the log lines of the start. */
const onDatabase = <A>(dataDir: string, use: Effect.Effect<A, unknown, SqlClient.SqlClient>) =>
  Effect.gen(function* () {
    const sink = makeMemorySink()
    const exit = yield* use.pipe(
      Effect.provide(
        Layer.unwrap(
          Effect.map(startEmbeddedPostgres(dataDir), (address) =>
            PgClient.layer({ ...address, username: "postgres", database: "postgres", maxConnections: 1 })
          )
        )
      ),
      Effect.provide(Logger.layer([jsonLogger(sink)])),
      Effect.exit
    )
    const messages = sink.lines.map((line) => (JSON.parse(line) as { message: string }).message)
    return { exit, messages }
  })

const initialisedLine = "embedded database: data directory initialised"

describe("an embedded data directory's first boot", () => {
  it.effect(
    "is initialised by a child process once; what it holds is there at the next start",
    () =>
      Effect.gen(function* () {
        const dataDir = join(yield* tempDir(), "data")
        const first = yield* onDatabase(
          dataDir,
          Effect.gen(function* () {
            const sql = yield* SqlClient.SqlClient
            yield* sql`CREATE TABLE kept (note text)`
            yield* sql`INSERT INTO kept VALUES ('written at the first boot')`
          })
        )
        assert.isTrue(Exit.isSuccess(first.exit), String(first.exit))
        assert.deepStrictEqual(
          first.messages.filter((m) => m === initialisedLine),
          [initialisedLine]
        )
        assert.isTrue(isInitialised(dataDir))

        const second = yield* onDatabase(
          dataDir,
          Effect.gen(function* () {
            const sql = yield* SqlClient.SqlClient
            return yield* sql<{ readonly note: string }>`SELECT note FROM kept`
          })
        )
        assert.deepStrictEqual(Exit.isSuccess(second.exit) ? second.exit.value : String(second.exit), [
          { note: "written at the first boot" }
        ])
        assert.notInclude(second.messages, initialisedLine, "reopened, not initialised again")
      }),
    60_000
  )

  it.effect(
    "that fails is an error naming the directory and why, and leaves it uninitialised",
    () =>
      Effect.gen(function* () {
        const dataDir = join(yield* tempDir(), "data")
        mkdirSync(dataDir)
        // A file where initdb makes a directory of its own.
        writeFileSync(join(dataDir, "global"), "not a directory")
        const { exit } = yield* onDatabase(dataDir, Effect.void)
        if (Exit.isSuccess(exit)) return assert.fail("the database started")
        const failure = exit.cause.reasons[0]
        const error = failure?._tag === "Fail" ? (failure.error as { _tag?: string; message?: string }) : undefined
        assert.strictEqual(error?._tag, "EmbeddedPostgresError")
        assert.include(error?.message ?? "", `initialising the data directory ${dataDir} failed`)
        assert.isFalse(isInitialised(dataDir))
      }),
    60_000
  )
})
