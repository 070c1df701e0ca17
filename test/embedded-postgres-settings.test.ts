import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { embeddedPostgresSettings, startEmbeddedPostgres } from "../layers/EmbeddedPostgres.ts"

/**
 * Issue 17, "Start-up and memory": the embedded database runs with the settings of `embeddedPostgresSettings` (a
 * 16 MB buffer pool, not PostgreSQL's 128 MB, which PGlite keeps resident from the start), whether its data
 * directory is in memory, created on this start, or reopened. The memory this saves is measured by
 * bench/startup.ts, not here: what is checked is the value PostgreSQL reports as in effect.
 */

/** A client on an embedded database started on `dataDir`, closed with the layer. */
const embeddedClient = (dataDir: string) =>
  Layer.unwrap(
    Effect.map(startEmbeddedPostgres(dataDir), (address) =>
      PgClient.layer({ ...address, username: "postgres", database: "postgres", maxConnections: 1 })
    )
  )

/** `SHOW <name>` for each of `names`, on an embedded database started on `dataDir` (closed afterwards). */
const settingsOn = (dataDir: string, names: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const shown: Record<string, string> = {}
    for (const name of names) {
      const rows = yield* sql.unsafe<Record<string, string>>(`SHOW ${name}`)
      shown[name] = rows[0]?.[name] ?? "(none)"
    }
    return shown
  }).pipe(Effect.provide(embeddedClient(dataDir)))

/**
 * What `SHOW` answers: the settings as written (`16MB`), and `wal_buffers`, which follows `shared_buffers` (-1 by
 * default: 1/32 of it; 4MB under PostgreSQL's default).
 */
const expected: Record<string, string> = { ...embeddedPostgresSettings, shared_buffers: "16MB", wal_buffers: "512kB" }
const names = Object.keys(expected)

describe("embedded database settings", () => {
  it.effect(
    "are in effect on an in-memory database",
    () =>
      Effect.gen(function* () {
        // The third and later of a process load the image of a fresh database the second took (freshInMemoryDatabase).
        for (const which of ["first", "second", "third"]) {
          assert.deepStrictEqual(yield* settingsOn("memory://", names), expected, which)
        }
      }),
    60_000
  )

  it.effect(
    "each in-memory database starts empty: what one holds is not in the next ones, initialised or loaded from the image",
    () =>
      Effect.gen(function* () {
        const tables = (write: boolean) =>
          Effect.gen(function* () {
            const sql = yield* SqlClient.SqlClient
            if (write) yield* sql`CREATE TABLE left_behind (id int)`
            const [row] = yield* sql<{ readonly n: number }>`
              SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'`
            return row?.n
          }).pipe(Effect.provide(embeddedClient("memory://")))
        assert.strictEqual(yield* tables(true), 1, "the table written in the first")
        for (const which of ["second", "third", "fourth"])
          assert.strictEqual(yield* tables(false), 0, `none in the ${which}`)
      }),
    60_000
  )

  it.effect(
    "are in effect on a data directory, when it is created and when it is reopened",
    () =>
      Effect.gen(function* () {
        const dataDir = yield* Effect.acquireRelease(
          Effect.sync(() => mkdtempSync(join(tmpdir(), "codex-pglite-settings-"))),
          (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
        )
        // The first start runs initdb; the second finds the database and starts it with the same settings.
        assert.deepStrictEqual(yield* settingsOn(dataDir, names), expected, "created")
        assert.deepStrictEqual(yield* settingsOn(dataDir, names), expected, "reopened")
      }),
    120_000
  )
})
