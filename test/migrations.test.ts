import { createHash, randomBytes } from "node:crypto"
import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, inject, it, layer } from "@effect/vitest"
import { Effect, Layer, Option, Redacted, type Scope } from "effect"
import { Migrator, SqlClient } from "effect/sql"
import { startEmbeddedPostgres } from "../layers/EmbeddedPostgres.ts"
import {
  migrationsDirectory,
  migrationsTable,
  runMigrations,
  sqlFileLoader,
  wrapMultiStatement
} from "../layers/Migrations.ts"
import { seedDemoTenant } from "../src/seed/DemoSeed.ts"
import { testEncryptionKeysEnv } from "./support/appConfig.ts"
import { withDatabase } from "./support/databaseMode.ts"
import { type ProcessResult, runToExit } from "./support/processes.ts"
import { TestSqlLive } from "./support/testDatabase.ts"

const mode = inject("testDatabase")

/** What the migrator should report for a fresh database: every file in `migrations/`, in id order. */
const expectedMigrations: ReadonlyArray<readonly [number, string]> = readdirSync(migrationsDirectory)
  .filter((file) => file.endsWith(".sql"))
  .sort()
  .map((file) => {
    const match = /^(\d{4})_(.+)\.sql$/.exec(file)
    if (match === null || match[1] === undefined || match[2] === undefined) throw new Error(`bad file ${file}`)
    return [Number(match[1]), match[2]] as const
  })

// ---------------------------------------------------------------------------------------------------------------
// Fresh, empty databases

const adminStatement = (adminUrl: string, statement: (sql: SqlClient.SqlClient) => Effect.Effect<unknown, unknown>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* statement(sql)
  }).pipe(
    Effect.provide(
      Layer.fresh(PgClient.layer({ url: Redacted.make(adminUrl), maxConnections: 1, connectTimeout: "5 seconds" }))
    ),
    Effect.orDie
  )

/** A new, EMPTY database on the server (not a clone of the migrated template), dropped when the scope closes. */
const emptyServerDatabase = (adminUrl: string): Effect.Effect<string, never, Scope.Scope> =>
  Effect.gen(function* () {
    const name = `codex_mig_${randomBytes(6).toString("hex")}`
    yield* Effect.acquireRelease(
      adminStatement(adminUrl, (sql) => sql`CREATE DATABASE ${sql(name)}`),
      () => adminStatement(adminUrl, (sql) => sql`DROP DATABASE IF EXISTS ${sql(name)} WITH (FORCE)`)
    )
    return withDatabase(adminUrl, name)
  })

/** A fresh embedded PGlite (in memory), reached through the same client as a real server. */
const FreshPglite: Layer.Layer<SqlClient.SqlClient> = Layer.unwrap(
  Effect.gen(function* () {
    const address = yield* startEmbeddedPostgres("memory://")
    return PgClient.layer({ ...address, username: "postgres", database: "postgres", maxConnections: 1 })
  })
).pipe(Layer.orDie)

/** A fresh database of the kind this run has: an empty database on the PostgreSQL server, else a fresh PGlite. */
const FreshRunDatabase: Layer.Layer<SqlClient.SqlClient> =
  mode.kind === "postgres"
    ? Layer.unwrap(
        Effect.gen(function* () {
          const url = yield* emptyServerDatabase(mode.adminUrl)
          return PgClient.layer({ url: Redacted.make(url), maxConnections: 2 })
        })
      ).pipe(Layer.orDie)
    : FreshPglite

const tempDirectory: Effect.Effect<string, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "codex-migrations-"))),
  (directory) => Effect.sync(() => rmSync(directory, { recursive: true, force: true }))
)

const withFiles = (files: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const directory = yield* tempDirectory
    for (const file of files) writeFileSync(join(directory, file), "SELECT 1;")
    return directory
  })

// ---------------------------------------------------------------------------------------------------------------
// Migrating a fresh database, on the run's server and on PGlite

const tableExists = (table: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ readonly found: boolean }>`SELECT to_regclass(${table}) IS NOT NULL AS found`
    return rows[0]?.found === true
  })

const migrationSuite = (label: string, database: Layer.Layer<SqlClient.SqlClient>) =>
  layer(database, { excludeTestServices: true })(label, (it) => {
    it.effect("a fresh database gets every migration in order; running again applies nothing", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        assert.isFalse(yield* tableExists(migrationsTable), "the database starts empty")
        assert.isFalse(yield* tableExists("tenants"), "the database starts empty")

        assert.deepStrictEqual(yield* runMigrations, expectedMigrations)
        assert.deepStrictEqual(yield* runMigrations, [])
        assert.deepStrictEqual(yield* runMigrations, [])

        const recorded = yield* sql<{ readonly migration_id: number; readonly name: string }>`
          SELECT migration_id, name FROM ${sql(migrationsTable)} ORDER BY migration_id`
        assert.deepStrictEqual(
          recorded.map((row) => [row.migration_id, row.name] as const),
          expectedMigrations,
          "one row per migration file"
        )
        // A database of its own: the block's other tests migrate the shared one, and tests run in any order.
      }).pipe(Effect.provide(Layer.fresh(database)))
    )

    it.effect("creates tenants, api_keys (a hash and a display prefix, never the key) and codex_seeds", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* runMigrations
        for (const table of ["tenants", "api_keys", "codex_seeds"]) {
          assert.isTrue(yield* tableExists(table), `${table} exists`)
        }
        const columns = yield* sql<{ readonly column_name: string; readonly data_type: string }>`
          SELECT column_name, data_type FROM information_schema.columns
          WHERE table_schema = 'public' AND table_name = 'api_keys'`
        const types = new Map(columns.map((c) => [c.column_name, c.data_type]))
        assert.strictEqual(types.get("key_hash"), "bytea")
        assert.strictEqual(types.get("key_prefix"), "text")
        assert.strictEqual(types.get("tenant_id"), "text")
        // Anything that could hold the key itself would be named after it.
        const keyish = columns
          .map((c) => c.column_name)
          .filter((name) => /key|secret|token|plain/i.test(name))
          .sort()
        assert.deepStrictEqual(keyish, ["key_hash", "key_prefix"])
      })
    )

    it.effect("a migration file with $$ bodies and $m0$/$o0$ in its text runs through the .sql loader", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const directory = yield* tempDirectory
        writeFileSync(
          join(directory, "0001_dollar_quotes.sql"),
          [
            "CREATE TABLE wrap_probe (note text NOT NULL);",
            "INSERT INTO wrap_probe (note) VALUES ('tags: $m0$ $o0$ $o2$ $m1');",
            "CREATE FUNCTION wrap_probe_answer() RETURNS int LANGUAGE plpgsql AS $$",
            "BEGIN",
            "  RETURN 42; -- a comment inside the body",
            "END",
            "$$;",
            "-- a file may end in a comment, even one ending in $m"
          ].join("\n")
        )
        // Ends in what would close the quote early if the wrapper glued its tag straight on.
        writeFileSync(
          join(directory, "0002_more.sql"),
          "INSERT INTO wrap_probe (note) VALUES ($o0$second$o0$); -- ends like a tag: $m0"
        )
        const applied = yield* Migrator.make({})({ loader: sqlFileLoader(directory), table: "wrap_probe_migrations" })
        assert.deepStrictEqual(applied, [
          [1, "dollar_quotes"],
          [2, "more"]
        ])
        const notes = yield* sql<{ readonly note: string }>`SELECT note FROM wrap_probe ORDER BY note DESC`
        assert.deepStrictEqual(
          notes.map((row) => row.note),
          ["tags: $m0$ $o0$ $o2$ $m1", "second"]
        )
        const answer = yield* sql<{ readonly answer: number }>`SELECT wrap_probe_answer() AS answer`
        assert.strictEqual(answer[0]?.answer, 42)
      })
    )

    it.effect("a failing migration leaves nothing behind (one transaction) and names the file", () =>
      Effect.gen(function* () {
        const directory = yield* tempDirectory
        writeFileSync(join(directory, "0001_good.sql"), "CREATE TABLE rollback_probe (id int);")
        writeFileSync(join(directory, "0002_broken.sql"), "CREATE TABLE rollback_probe_2 (id int);\nSELEC 1;")
        const error = yield* Migrator.make({})({ loader: sqlFileLoader(directory), table: "rollback_migrations" }).pipe(
          Effect.flip
        )
        assert.strictEqual(error._tag, "MigrationError")
        assert.include(error.message, "2_broken")
        assert.isFalse(yield* tableExists("rollback_probe"))
        assert.isFalse(yield* tableExists("rollback_probe_2"))
      })
    )
  })

migrationSuite(
  `migrations on a fresh ${mode.kind === "postgres" ? "PostgreSQL" : "PGlite"} database (this run's)`,
  FreshRunDatabase
)
migrationSuite("migrations on a fresh embedded PGlite", FreshPglite)

// ---------------------------------------------------------------------------------------------------------------
// Upgrading a database that holds data written by the previous version

/** The migrations of issue 15; the database is first migrated to just before the earliest of them. */
const issue15Migrations = ["endpoint_soft_delete", "idempotency_one_answer"]

const upgradeSuite = (label: string, database: Layer.Layer<SqlClient.SqlClient>) =>
  layer(database, { excludeTestServices: true })(label, (it) => {
    it.effect(
      "endpoints stay live with their secrets; idempotency keys keep exactly one answer, stale refs cleared",
      () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          const first = Math.min(
            ...expectedMigrations.filter(([, name]) => issue15Migrations.includes(name)).map(([id]) => id)
          )
          const directory = yield* tempDirectory
          for (const [id, name] of expectedMigrations.filter(([id]) => id < first)) {
            const file = `${String(id).padStart(4, "0")}_${name}.sql`
            copyFileSync(join(migrationsDirectory, file), join(directory, file))
          }
          yield* Migrator.make({})({ loader: sqlFileLoader(directory), table: migrationsTable })

          // Rows as the previous version left them.
          const tenant = "ten_01HZZZZZZZZZZZZZZZZZZZZZZZ"
          const endpoint = "ep_01HZZZZZZZZZZZZZZZZZZZZZZZ"
          yield* sql`INSERT INTO tenants (id, name) VALUES (${tenant}, 'Upgrade')`
          yield* sql`
            INSERT INTO endpoints (id, tenant_id, url, secret, previous_secret, previous_secret_expires_at)
            VALUES (${endpoint}, ${tenant}, 'https://example.com/hook', 'enc1:k:a:b', 'enc1:k:c:d',
                    now() + interval '1 day')`
          const ref = JSON.stringify({ event: "evt_1", deliveriesQueued: 1 })
          const key = (name: string, state: string, status: number | null, body: string | null, withRef: boolean) =>
            sql`
              INSERT INTO idempotency_keys (scope, key, fingerprint, method, path, state, lock_token, response_status,
                                            response_headers, response_body, response_ref, completed_at, expires_at)
              VALUES ('admin', ${name}, ${"0".repeat(64)}, 'POST', '/v1/x', ${state}, 't', ${status},
                      ${body === null ? null : "{}"}::jsonb, ${body}, ${withRef ? ref : null}::jsonb,
                      ${state === "completed" ? sql`now()` : sql`NULL`}, now() + interval '5 minutes')`
          // The issue's row: the endpoint's stored response beside the event's stale ref.
          yield* key("stale-ref", "completed", 201, "enc1:k:e:f", true)
          // The same key while the endpoint's request ran: a claim that still carried the ref.
          yield* key("claim-with-ref", "in_progress", null, null, true)
          yield* key("ref", "completed", null, null, true)
          yield* key("stored", "completed", 201, "enc1:k:e:f", false)
          // No code writes this; the previous schema allowed it, and nothing could replay it.
          yield* key("status-only", "completed", 201, null, false)

          const applied = yield* runMigrations
          assert.deepStrictEqual(
            applied,
            expectedMigrations.filter(([id]) => id >= first)
          )
          const [row] = yield* sql<{ readonly deleted_at: Date | null; readonly secret: string | null }>`
            SELECT deleted_at, secret FROM endpoints WHERE id = ${endpoint}`
          assert.deepStrictEqual(row, { deleted_at: null, secret: "enc1:k:a:b" })
          const keys = yield* sql<{
            readonly key: string
            readonly state: string
            readonly response_status: number | null
            readonly has_ref: boolean
          }>`
            SELECT key, state, response_status, response_ref IS NOT NULL AS has_ref
            FROM idempotency_keys WHERE scope = 'admin' ORDER BY key`
          assert.deepStrictEqual(keys, [
            { key: "claim-with-ref", state: "in_progress", response_status: null, has_ref: false },
            { key: "ref", state: "completed", response_status: null, has_ref: true },
            { key: "stale-ref", state: "completed", response_status: 201, has_ref: false },
            { key: "stored", state: "completed", response_status: 201, has_ref: false }
          ])
        })
    )
  })

upgradeSuite(
  `upgrading a ${mode.kind === "postgres" ? "PostgreSQL" : "PGlite"} database with data (this run's)`,
  FreshRunDatabase
)
upgradeSuite("upgrading an embedded PGlite with data", FreshPglite)

// 0010: events.data from jsonb to json, on a database with events

/** The project's migrations up to and including `last`. */
const migrationsUpTo = (last: number): Migrator.Loader =>
  Effect.map(sqlFileLoader(migrationsDirectory), (all) => all.filter(([id]) => id <= last))

/** Events stored as jsonb before 0010, and the text each must have after it: jsonb's own, all that is left of them. */
const jsonbEvents: ReadonlyArray<readonly [jsonb: string, after: string]> = [
  // jsonb's member order and number text, and its spaces after `:` and `,`.
  ['{"z":1,"a":2.50,"big":12345678901234567890123}', '{"a": 2.50, "z": 1, "big": 12345678901234567890123}'],
  [
    String.raw`{"a, b":"x: y","c\\":["\\","\", "],"e":[1,{"f":[],"g":{}}],"é":"\u00e9"}`,
    String.raw`{"e": [1, {"f": [], "g": {}}], "c\\": ["\\", "\", "], "é": "é", "a, b": "x: y"}`
  ],
  ["{}", "{}"]
]

const eventDataMigration = (label: string, database: Layer.Layer<SqlClient.SqlClient>) =>
  layer(database, { excludeTestServices: true })(label, (it) => {
    it.effect("0010 makes events.data json, keeping each row's jsonb text", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* Migrator.make({})({ loader: migrationsUpTo(9), table: migrationsTable })
        const tenant = "ten_00000000000000000000000000"
        yield* sql`INSERT INTO tenants (id, name) VALUES (${tenant}, 'before 0010')`
        for (const [i, [jsonb]] of jsonbEvents.entries()) {
          yield* sql`
            INSERT INTO events (id, tenant_id, type, data, occurred_at)
            VALUES (${`evt_${String(i).padStart(26, "0")}`}, ${tenant}, 'old.event', ${jsonb}::jsonb, now())`
        }
        const applied = yield* runMigrations
        assert.deepStrictEqual(applied[0], [10, "events_data_json"])
        const rows = yield* sql<{ readonly text: string; readonly type: string }>`
          SELECT data::text AS text, pg_typeof(data)::text AS type FROM events ORDER BY id`
        assert.deepStrictEqual(
          rows.map((row) => [row.type, row.text]),
          jsonbEvents.map(([, after]) => ["json", after])
        )
      })
    )
  })

eventDataMigration(
  `0010 on a ${mode.kind === "postgres" ? "PostgreSQL" : "PGlite"} database with events (this run's)`,
  FreshRunDatabase
)
eventDataMigration("0010 on an embedded PGlite with events", FreshPglite)

// ---------------------------------------------------------------------------------------------------------------
// The pieces, without a database

describe("wrapMultiStatement", () => {
  const occurrences = (text: string, tag: string) => text.split(tag).length - 1

  it("wraps the text verbatim in a DO block with tags that do not occur in it", () => {
    const text = "SELECT 1;\nSELECT $$x$$;"
    assert.strictEqual(wrapMultiStatement(text), `DO $o0$ BEGIN EXECUTE $m0$\n${text}\n$m0$; END $o0$`)
  })

  it("steps around $m0$ and $o0$ already in the text", () => {
    const text = "SELECT '$m0$', '$o0$', '$m1$'; CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;"
    const wrapped = wrapMultiStatement(text)
    assert.strictEqual(wrapped, `DO $o1$ BEGIN EXECUTE $m2$\n${text}\n$m2$; END $o1$`)
    assert.strictEqual(occurrences(wrapped, "$m2$"), 2)
    assert.strictEqual(occurrences(wrapped, "$o1$"), 2)
  })

  it("keeps a tag from forming across the edges of the text", () => {
    // Without a separator, `...$m0` + `$m0$` would close the quote early, and `$m0$` + `o0$...` would open one.
    for (const text of ["SELECT 1 -- ends in $m0", "o0$ starts like a tag", "SELECT 1 -- ends in $o0"]) {
      const wrapped = wrapMultiStatement(text)
      const inner = /EXECUTE (\$m\d+\$)/.exec(wrapped)?.[1] ?? ""
      const outer = /^DO (\$o\d+\$)/.exec(wrapped)?.[1] ?? ""
      assert.strictEqual(occurrences(wrapped, inner), 2, wrapped)
      assert.strictEqual(occurrences(wrapped, outer), 2, wrapped)
      assert.strictEqual(wrapped.indexOf(inner, wrapped.indexOf(inner) + 1), wrapped.lastIndexOf(`\n${inner};`) + 1)
    }
  })
})

describe("sqlFileLoader", () => {
  it.effect("loads NNNN_name.sql files in id order and ignores other files", () =>
    Effect.gen(function* () {
      const directory = yield* withFiles(["0010_later.sql", "0002_second_step.sql", "0001_first.sql", "README.md"])
      const loaded = yield* sqlFileLoader(directory)
      assert.deepStrictEqual(
        loaded.map(([id, name]) => [id, name]),
        [
          [1, "first"],
          [2, "second_step"],
          [10, "later"]
        ]
      )
    })
  )

  it.effect("loads the project's own migrations", () =>
    Effect.gen(function* () {
      const loaded = yield* sqlFileLoader(migrationsDirectory)
      assert.deepStrictEqual(
        loaded.map(([id, name]) => [id, name] as const),
        expectedMigrations
      )
    })
  )

  const badNames: ReadonlyArray<readonly [files: ReadonlyArray<string>, mentioned: string]> = [
    [["0001_ok.sql", "2_short_id.sql"], "2_short_id.sql"],
    [["0001-dash.sql"], "0001-dash.sql"],
    [["0001_Upper.sql"], "0001_Upper.sql"],
    [["00001_five_digits.sql"], "00001_five_digits.sql"],
    [["0001_.sql"], "0001_.sql"],
    [["0001_has space.sql"], "0001_has space.sql"],
    [["0000_zero.sql"], "0000_zero.sql"],
    [["0001_one.sql", "0001_other.sql"], "0001_other.sql"]
  ]
  for (const [files, mentioned] of badNames) {
    it.effect(`rejects ${files.join(" + ")}`, () =>
      Effect.gen(function* () {
        const directory = yield* withFiles(files)
        const error = yield* Effect.flip(sqlFileLoader(directory))
        assert.strictEqual(error._tag, "MigrationError")
        assert.strictEqual(error.kind, "ImportError")
        assert.include(error.message, mentioned)
      })
    )
  }

  it.effect("a missing directory is an ImportError naming it", () =>
    Effect.gen(function* () {
      const directory = join(tmpdir(), `codex-no-such-dir-${randomBytes(4).toString("hex")}`)
      const error = yield* Effect.flip(sqlFileLoader(directory))
      assert.strictEqual(error.kind, "ImportError")
      assert.include(error.message, directory)
    })
  )
})

// ---------------------------------------------------------------------------------------------------------------
// Two `npm run migrate` processes racing on one fresh database

type MigrateRun = ProcessResult

const migrateDeadlineMs = 30_000

/** `npm run migrate` as a child process (JSON logs), killed if it has not exited by the deadline. */
const runMigrateProcess = (databaseUrl: string): Promise<MigrateRun> =>
  runToExit(
    "src/migrate.ts",
    {
      ...process.env,
      DATABASE_URL: databaseUrl,
      APP_ENV: "production",
      ENCRYPTION_KEYS: testEncryptionKeysEnv,
      LOG_FORMAT: "json",
      LOG_LEVEL: "info"
    },
    migrateDeadlineMs
  )

/** The `message` (and `migrations` annotation) of each JSON log line. */
const logMessages = (stdout: string): ReadonlyArray<{ readonly message: unknown; readonly migrations: unknown }> =>
  stdout
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as { readonly message: unknown; readonly migrations: unknown })

const rounds = 4

describe.skipIf(mode.kind === "pglite")("concurrent migrators (needs a PostgreSQL server)", () => {
  it.live(
    `two processes migrating one fresh database at once both exit 0 and apply each migration once (${rounds} rounds)`,
    () =>
      Effect.gen(function* () {
        if (mode.kind === "pglite") return
        const adminUrl = mode.adminUrl
        for (let round = 1; round <= rounds; round++) {
          yield* Effect.scoped(
            Effect.gen(function* () {
              const url = yield* emptyServerDatabase(adminUrl)
              const runs = yield* Effect.promise(() => Promise.all([runMigrateProcess(url), runMigrateProcess(url)]))
              for (const run of runs) {
                assert.strictEqual(run.code, 0, `round ${round}: exit ${run.code}\n${run.stderr}${run.stdout}`)
                assert.strictEqual(run.stderr, "", `round ${round}`)
              }

              const all = expectedMigrations.map(([id, name]) => `${id}_${name}`).join(",")
              const outcomes = runs
                .map((run) =>
                  logMessages(run.stdout).find(
                    (entry) =>
                      entry.message === "applied migrations" || entry.message === "database schema is up to date"
                  )
                )
                .map((entry) =>
                  entry?.message === "applied migrations" ? `applied ${String(entry.migrations)}` : entry?.message
                )
                .sort()
              assert.deepStrictEqual(
                outcomes,
                [`applied ${all}`, "database schema is up to date"],
                `round ${round}: exactly one process applies, the other finds nothing to do`
              )

              const recorded = yield* Effect.gen(function* () {
                const sql = yield* SqlClient.SqlClient
                return yield* sql<{ readonly migration_id: number; readonly name: string }>`
                  SELECT migration_id, name FROM ${sql(migrationsTable)} ORDER BY migration_id`
              }).pipe(
                Effect.provide(Layer.fresh(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 }))),
                Effect.orDie
              )
              assert.deepStrictEqual(
                recorded.map((row) => [row.migration_id, row.name] as const),
                expectedMigrations,
                `round ${round}`
              )
            })
          )
        }
      }),
    120_000
  )
})

// ---------------------------------------------------------------------------------------------------------------
// The development seed

const sha256 = (text: string): Buffer => createHash("sha256").update(text).digest()

layer(TestSqlLive, { excludeTestServices: true })("demo seed", (it) => {
  it.effect("creates the demo tenant and one key once; the row holds the SHA-256 of the key, never the key", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      // From a database never seeded, whatever ran before in this file (the tests run in any order).
      yield* sql`DELETE FROM codex_seeds`
      yield* sql`DELETE FROM tenants`
      const first = yield* seedDemoTenant
      assert.isTrue(Option.isSome(first))
      if (Option.isNone(first)) return
      const { tenantId, apiKey } = first.value
      const key = Redacted.value(apiKey)
      assert.match(tenantId, /^ten_[0-9A-HJKMNP-TV-Z]{26}$/)
      assert.match(key, /^ck_[A-Za-z0-9_-]{43}$/)

      assert.isTrue(Option.isNone(yield* seedDemoTenant), "the second call does nothing")
      assert.isTrue(Option.isNone(yield* seedDemoTenant), "nor does a third")

      const tenants = yield* sql<{ readonly id: string; readonly name: string }>`SELECT id, name FROM tenants`
      assert.deepStrictEqual(
        tenants.map((t) => [t.id, t.name]),
        [[tenantId, "Demo tenant"]]
      )
      const keys = yield* sql<{
        readonly tenant_id: string
        readonly key_hash: Uint8Array
        readonly key_prefix: string
      }>`
        SELECT tenant_id, key_hash, key_prefix FROM api_keys`
      assert.strictEqual(keys.length, 1)
      const [stored] = keys
      assert.isDefined(stored)
      if (stored === undefined) return
      assert.strictEqual(stored.tenant_id, tenantId)
      assert.isTrue(Buffer.from(stored.key_hash).equals(sha256(key)), "key_hash is the SHA-256 of the key")
      assert.isTrue(key.startsWith(stored.key_prefix))
      assert.isBelow(stored.key_prefix.length, key.length / 2, "the prefix is a short display hint")

      // Nothing in the row, in any column or encoding, is the key or its random part.
      const rendered = yield* sql<{ readonly row: string }>`SELECT to_jsonb(k)::text AS row FROM api_keys k`
      for (const { row } of rendered) {
        assert.notInclude(row, key)
        assert.notInclude(row, key.slice(3))
        assert.notInclude(row, Buffer.from(key).toString("hex"))
      }
      const seeds = yield* sql<{ readonly name: string; readonly tenant_id: string | null }>`
        SELECT name, tenant_id FROM codex_seeds`
      assert.deepStrictEqual(
        seeds.map((s) => [s.name, s.tenant_id]),
        [["demo", tenantId]]
      )
    })
  )

  it.effect("concurrent seeders: exactly one creates the tenant", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* sql`DELETE FROM codex_seeds`
      yield* sql`DELETE FROM tenants`
      const results = yield* Effect.all(
        Array.from({ length: 4 }, () => seedDemoTenant),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(results.filter(Option.isSome).length, 1)
      const counts = yield* sql<{ readonly tenants: number; readonly keys: number }>`
        SELECT (SELECT count(*)::int FROM tenants) AS tenants, (SELECT count(*)::int FROM api_keys) AS keys`
      assert.deepStrictEqual(counts[0], { tenants: 1, keys: 1 })
    })
  )
})
