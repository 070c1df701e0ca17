import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { PgClient } from "@effect/sql-pg"
import { assert, layer } from "@effect/vitest"
import { Duration, Effect, Option, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { inject } from "vitest"
import { packageRoot, packageVersion } from "../src/domain/PackageInfo.ts"
import { codex, expectExit, ok, okJson, startCodex } from "./support/codexCli.ts"
import { withDatabase } from "./support/databaseMode.ts"
import { fastWorker, succeeded } from "./support/deliveryApi.ts"
import { apiClient, createTenant } from "./support/http.ts"
import { isDefined, poll } from "./support/poll.ts"
import { freePort } from "./support/ports.ts"
import { answer, makeReceiver } from "./support/receiver.ts"
import { TestServer, testServer } from "./support/testServer.ts"

/**
 * `codex`, the command-line tool (issue 24), run as a process against the real server: every command as a table and
 * with `--json`, the config file and its precedence, bad input (exit 2, or 1 for what the server refuses), a server
 * that is down (exit 3), live `tail` with colours, and `migrate` on a fresh database. Each spawn costs a second or two
 * of CPU, so the tests batch the commands of one resource.
 */

const adminToken = "cli-test-admin-token-0123456789abcdefgh"

// The worker delivers (a held receiver may keep an attempt open while `tail` watches: hence the long timeout).
const serverConfig = {
  adminToken: Option.some(Redacted.make(adminToken)),
  delivery: fastWorker({ timeout: Duration.seconds(60) })
}

/** Each test runs `codex` several times, a second or two of CPU each: more than the default 30 s on a loaded machine. */
const spawning = 120_000

// biome-ignore lint/suspicious/noControlCharactersInRegex: colours are ANSI escapes.
const ansi = /\u001b\[/

/** The server's URL, the admin token and a new tenant's API key, as `codex` reads them from the environment. */
const tenantEnv = Effect.gen(function* () {
  const { baseUrl } = yield* TestServer
  const tenant = yield* createTenant("CLI tenant", { adminToken })
  return {
    tenantId: tenant.tenantId,
    apiKey: tenant.apiKey,
    env: { CODEX_URL: baseUrl, CODEX_API_KEY: tenant.apiKey }
  }
})

/** A receiver answering 204, and an endpoint of the tenant to it (through the API, not the CLI). */
const endpointTo = (apiKey: string, eventTypes: ReadonlyArray<string> = []) =>
  Effect.gen(function* () {
    const receiver = yield* makeReceiver((_, __, response) => answer(response, 204))
    const api = yield* apiClient(apiKey)
    const endpoint = yield* api.endpoints.create({ payload: { url: receiver.url, eventTypes } }).pipe(Effect.orDie)
    return { receiver, endpoint, api }
  })

/** A directory for the test's files, removed afterwards. */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "codex-cli-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

/** The value a `Label  value` line of a table shows. */
const field = (stdout: string, label: string): string => {
  const match = new RegExp(`^${label}\\s{2,}(.*)$`, "m").exec(stdout)
  assert.isNotNull(match, `no "${label}" line in:\n${stdout}`)
  return match?.[1]?.trim() ?? ""
}

const closedUrl = Effect.map(
  Effect.promise(() => freePort()),
  (port) => `http://127.0.0.1:${port}`
)

layer(testServer({ config: serverConfig }), { excludeTestServices: true })("the codex CLI", (it) => {
  it.effect(
    "explains itself: --help for the tool (its TypeScript sources, as the package's bin) and each command, --version, shell completions",
    () =>
      Effect.gen(function* () {
        const [help, endpoints, tail, version, completions, group] = yield* Effect.all(
          [
            codex(["--help"], { sources: true }),
            codex(["endpoints", "--help"]),
            codex(["tail", "--help"]),
            codex(["--version"]),
            codex(["--completions", "bash"]),
            codex(["tenants"])
          ],
          { concurrency: 3 }
        )
        const root = ok(help)
        for (const command of ["tenants", "keys", "endpoints", "events", "deliveries", "tail", "portal", "migrate"]) {
          assert.match(root, new RegExp(`^  ${command}\\s{2,}\\S`, "m"), `codex --help lists ${command}`)
        }
        assert.include(root, "Exit codes: 0 done, 1 the server refused (4xx/5xx), 2 usage or configuration error")
        for (const flag of [
          "--url",
          "--api-key",
          "--admin-token",
          "--tenant",
          "--profile",
          "--config",
          "--json",
          "--color"
        ]) {
          assert.include(root, flag)
        }
        const endpointsHelp = ok(endpoints)
        for (const command of ["create", "list", "get", "update", "delete", "test", "recover"]) {
          assert.match(endpointsHelp, new RegExp(`^  ${command}\\s{2,}\\S`, "m"))
        }
        assert.include(ok(tail), "--interval")
        assert.strictEqual(ok(version).trim(), `codex v${packageVersion}`)
        const script = ok(completions)
        assert.include(script, "complete")
        assert.include(script, "deliveries")
        // A command group alone shows its help: no error.
        assert.include(ok(group), "SUBCOMMANDS")
      }),
    spawning
  )

  it.effect(
    "tenants: create (the key shown once), list, get and delete; tables and --json",
    () =>
      Effect.gen(function* () {
        const { baseUrl } = yield* TestServer
        const env = { CODEX_URL: baseUrl, CODEX_ADMIN_TOKEN: adminToken }
        const created = ok(yield* codex(["tenants", "create", "Acme Inc.", "--retention-seconds", "3600"], { env }))
        assert.notMatch(created, ansi, "no colours when stdout is not a terminal")
        const id = field(created, "Id")
        assert.match(id, /^ten_/)
        assert.strictEqual(field(created, "Name"), "Acme Inc.")
        assert.strictEqual(field(created, "Retention"), "3600 s")
        assert.match(field(created, "API key"), /^ck_\S+ {2}\(shown once: store it now\)$/)

        const listed = okJson<{ data: ReadonlyArray<{ id: string; name: string }>; nextCursor: string | null }>(
          yield* codex(["tenants", "list", "--json", "--limit", "100"], { env })
        )
        assert.deepInclude(
          listed.data.map((t) => ({ id: t.id, name: t.name })),
          { id, name: "Acme Inc." }
        )
        const shown = ok(yield* codex(["tenants", "get", id], { env }))
        assert.strictEqual(field(shown, "Status"), "active")
        assert.match(shown, /^KEY\s+PREFIX\s+CREATED\s+REVOKED$/m)
        const deleted = okJson(yield* codex(["--json", "tenants", "delete", id], { env }))
        assert.strictEqual(deleted.status, "deleting")

        const anonymous = expectExit(yield* codex(["tenants", "list"], { env: { CODEX_URL: baseUrl } }), 1)
        assert.match(anonymous.stderr, /^codex: 401 Unauthorized/)
      }),
    spawning
  )

  it.effect(
    "keys: create (printed once), list and revoke the tenant's own keys",
    () =>
      Effect.gen(function* () {
        const { env } = yield* tenantEnv
        const created = okJson(yield* codex(["keys", "create", "Dashboard", "--scope", "read", "--json"], { env }))
        assert.match(String(created.key), /^ck_/)
        assert.strictEqual(created.scope, "read")
        const table = ok(yield* codex(["keys", "list"], { env }))
        assert.match(table, /^ID\s+NAME\s+PREFIX\s+SCOPE\s+LAST USED\s+EXPIRES\s+REVOKED$/m)
        assert.match(table, new RegExp(`^${String(created.id)}\\s+Dashboard\\s+\\S+\\s+read\\s`, "m"))
        assert.strictEqual(
          field(ok(yield* codex(["keys", "revoke", String(created.id)], { env })), "Revoked"),
          created.id
        )
        const keys = okJson<{ data: ReadonlyArray<{ id: string; revokedAt: string | null }> }>(
          yield* codex(["keys", "list", "--json"], { env })
        )
        assert.isString(keys.data.find((k) => k.id === created.id)?.revokedAt)
      }),
    spawning
  )

  it.effect(
    "endpoints: create, list, get, update, secret, test, recover and delete",
    () =>
      Effect.gen(function* () {
        const { env } = yield* tenantEnv
        const receiver = yield* makeReceiver((_, __, response) => answer(response, 204))
        const created = ok(
          yield* codex(["endpoints", "create", receiver.url, "--event-type", "order.*", "--description", "orders"], {
            env
          })
        )
        assert.strictEqual(field(created, "URL"), receiver.url)
        assert.strictEqual(field(created, "Event types"), "order.*")
        const id = field(created, "Id")

        const listed = okJson<{ data: ReadonlyArray<{ id: string }> }>(
          yield* codex(["endpoints", "list", "--json"], { env })
        )
        assert.deepStrictEqual(
          listed.data.map((e) => e.id),
          [id]
        )
        assert.strictEqual(field(ok(yield* codex(["endpoints", "get", id], { env })), "Circuit"), "closed")
        const updated = okJson(
          yield* codex(["endpoints", "update", id, "--description", "billing", "--rate-limit", "5", "--json"], { env })
        )
        assert.strictEqual(updated.description, "billing")
        assert.strictEqual(updated.rateLimit, 5)
        assert.match(String(okJson(yield* codex(["endpoints", "secret", id, "--json"], { env })).secret), /^whsec_/)

        const tested = ok(yield* codex(["endpoints", "test", id], { env }))
        assert.match(field(tested, "Delivery"), /^dlv_/)
        const request = yield* poll(
          "the test event at the receiver",
          Effect.sync(() => receiver.requests[0]),
          isDefined
        )
        assert.strictEqual((JSON.parse(request.body) as { type: string }).type, "codex.test")

        const recovered = okJson(yield* codex(["endpoints", "recover", id, "--since", "1h", "--json"], { env }))
        assert.deepStrictEqual(recovered, { queued: 0 })
        assert.strictEqual(field(ok(yield* codex(["endpoints", "delete", id], { env })), "Deleted"), id)
        const gone = expectExit(yield* codex(["endpoints", "get", id], { env }), 1)
        assert.match(gone.stderr, /^codex: 404 Not Found/)
      }),
    spawning
  )

  it.effect(
    "events: publish from a file and from stdin (idempotently), list and get",
    () =>
      Effect.gen(function* () {
        const { env, apiKey } = yield* tenantEnv
        yield* endpointTo(apiKey, ["order.*"])
        const dir = yield* tempDir
        const file = join(dir, "event.json")
        writeFileSync(file, JSON.stringify({ type: "order.created", data: { orderId: "o_1" } }))
        const fromFile = ok(yield* codex(["events", "publish", file], { env }))
        const firstId = field(fromFile, "Event")
        assert.strictEqual(field(fromFile, "Type"), "order.created")
        assert.strictEqual(field(fromFile, "Deliveries"), "1 queued")

        const args = ["events", "publish", "--type", "order.paid", "--idempotency-key", "paid-o_1"]
        const fromStdin = okJson<{ event: { id: string; data: unknown } }>(
          yield* codex([...args, "--json"], { env, stdin: '{"orderId":"o_1","amount":4200}' })
        )
        assert.deepStrictEqual(fromStdin.event.data, { orderId: "o_1", amount: 4200 })
        const again = ok(yield* codex(args, { env, stdin: '{"orderId":"o_1","amount":4200}' }))
        assert.strictEqual(field(again, "Event"), fromStdin.event.id)
        assert.strictEqual(field(again, "Replayed"), "yes: published before with this key")

        const listed = okJson<{ data: ReadonlyArray<{ id: string }> }>(
          yield* codex(["events", "list", "--type", "order.*", "--since", "1h", "--json"], { env })
        )
        assert.deepStrictEqual(
          listed.data.map((e) => e.id),
          [fromStdin.event.id, firstId]
        )
        const table = ok(yield* codex(["events", "list", "--limit", "1"], { env }))
        assert.match(table, new RegExp(`^${fromStdin.event.id}\\s+order\\.paid\\s`, "m"))
        assert.notInclude(table, firstId)
        const shown = ok(yield* codex(["events", "get", firstId], { env }))
        assert.strictEqual(field(shown, "Type"), "order.created")
        assert.include(shown, '"orderId": "o_1"')
      }),
    spawning
  )

  it.effect(
    "deliveries: list by filters or by event, get with attempts, retry",
    () =>
      Effect.gen(function* () {
        const { env, apiKey } = yield* tenantEnv
        const { endpoint, api } = yield* endpointTo(apiKey)
        const published = yield* api.events.publish({ payload: { type: "order.created", data: {} } }).pipe(Effect.orDie)
        const delivery = yield* succeeded(api, published.event.id)

        const filtered = okJson<{ data: ReadonlyArray<{ id: string }> }>(
          yield* codex(["deliveries", "list", "--status", "succeeded", "--endpoint", endpoint.id, "--json"], { env })
        )
        assert.deepStrictEqual(
          filtered.data.map((d) => d.id),
          [delivery.id]
        )
        const none = ok(yield* codex(["deliveries", "list", "--status", "failed"], { env }))
        assert.strictEqual(none.trim(), "No deliveries.")
        const byEvent = ok(yield* codex(["deliveries", "list", "--event", published.event.id, "--color"], { env }))
        assert.match(byEvent, new RegExp(`${delivery.id}\\s+\\u001b\\[32msucceeded`), "--color forces colours")
        const shown = ok(yield* codex(["deliveries", "get", delivery.id], { env }))
        assert.strictEqual(field(shown, "Status"), "succeeded")
        assert.match(shown, /^1\s+\S+\s+succeeded\s+204\s+\d+\s+—$/m)
        const retried = okJson(yield* codex(["deliveries", "retry", delivery.id, "--json"], { env }))
        assert.strictEqual(retried.status, "pending")
      }),
    spawning
  )

  it.effect(
    "tail: follows a new delivery and its outcome live, in colour on request; --json prints objects",
    () =>
      Effect.gen(function* () {
        const { env, apiKey } = yield* tenantEnv
        let release = () => {}
        const released = new Promise<void>((resolve) => {
          release = resolve
        })
        yield* Effect.addFinalizer(() => Effect.sync(() => release()))
        // The receiver holds the first attempt until the tail has shown the delivery pending.
        const receiver = yield* makeReceiver(async (_, __, response) => {
          await released
          answer(response, 204)
        })
        const api = yield* apiClient(apiKey)
        yield* api.endpoints.create({ payload: { url: receiver.url } }).pipe(Effect.orDie)
        const first = yield* api.events.publish({ payload: { type: "order.created", data: {} } }).pipe(Effect.orDie)

        const tail = yield* startCodex(["tail", "--since", "5m", "--interval", "0.2"], { ...env, FORCE_COLOR: "1" })
        const pending = yield* tail.line(/pending.*evt_/, "the tail to show the delivery pending")
        assert.include(pending, first.event.id)
        assert.include(pending, "\u001b[33mpending", "pending in yellow")
        release()
        const done = yield* tail.line(/succeeded.*attempt 1 {2}HTTP 204/, "the tail to show the delivery succeeded")
        assert.include(done, "\u001b[32msucceeded", "succeeded in green")
        assert.strictEqual(yield* tail.interrupt, 130)

        const second = yield* api.events.publish({ payload: { type: "order.paid", data: {} } }).pipe(Effect.orDie)
        const json = yield* startCodex(["tail", "--json", "--since", "5m", "--interval", "0.2"], env)
        const line = yield* json.line(
          new RegExp(`"eventId":"${second.event.id}".*"status":"succeeded"`),
          "the JSON tail to show the second delivery succeeded"
        )
        assert.strictEqual((JSON.parse(line) as { status: string }).status, "succeeded")
        assert.notMatch(json.output().stdout, ansi)
        assert.strictEqual(yield* json.interrupt, 130)
      }),
    spawning
  )

  it.effect(
    "portal: prints a link to the tenant's portal (--json: the session)",
    () =>
      Effect.gen(function* () {
        const { baseUrl } = yield* TestServer
        const { tenantId } = yield* tenantEnv
        const env = { CODEX_URL: baseUrl, CODEX_ADMIN_TOKEN: adminToken }
        const link = ok(yield* codex(["portal", tenantId, "--read-only", "--expires-in", "600"], { env }))
        assert.match(link, /^https?:\/\/\S+\n$/)
        const session = okJson(yield* codex(["portal", tenantId, "--json"], { env }))
        assert.match(String(session.id), /^pss_/)
        assert.strictEqual(session.readOnly, false)
      }),
    spawning
  )

  it.effect(
    "--tenant: the admin token acts as a tenant (Codex-Tenant) on tenant commands",
    () =>
      Effect.gen(function* () {
        const { baseUrl } = yield* TestServer
        const { tenantId, apiKey } = yield* tenantEnv
        const { endpoint } = yield* endpointTo(apiKey)
        const env = { CODEX_URL: baseUrl, CODEX_ADMIN_TOKEN: adminToken }
        const listed = okJson<{ data: ReadonlyArray<{ id: string }> }>(
          yield* codex(["endpoints", "list", "--tenant", tenantId, "--json"], { env })
        )
        assert.deepStrictEqual(
          listed.data.map((e) => e.id),
          [endpoint.id]
        )
      }),
    spawning
  )

  it.effect(
    "reads the config file's profiles; flags win over the environment, which wins over the file",
    () =>
      Effect.gen(function* () {
        const { baseUrl } = yield* TestServer
        const { apiKey } = yield* tenantEnv
        const down = yield* closedUrl
        const dir = yield* tempDir
        const config = join(dir, "config.json")
        writeFileSync(
          config,
          JSON.stringify({ apiKey, profile: "local", profiles: { local: { url: baseUrl }, down: { url: down } } })
        )
        const list = ["endpoints", "list", "--json"]
        const [fromFile, downProfile, envOverFile, flagOverEnv, unknownProfile, badFile] = yield* Effect.all(
          [
            codex(list, { env: { CODEX_CONFIG: config } }),
            codex(["--profile", "down", ...list], { env: { CODEX_CONFIG: config } }),
            codex(list, { env: { CODEX_CONFIG: config, CODEX_PROFILE: "down", CODEX_URL: baseUrl } }),
            codex(["--url", down, ...list], { env: { CODEX_CONFIG: config, CODEX_URL: baseUrl } }),
            codex(["--profile", "staging", ...list], { env: { CODEX_CONFIG: config } }),
            codex(list, { env: { CODEX_CONFIG: join(dir, "missing.json") } })
          ],
          { concurrency: 3 }
        )
        assert.deepStrictEqual(okJson(fromFile), { data: [], nextCursor: null })
        expectExit(downProfile, 3)
        assert.deepStrictEqual(okJson(envOverFile), { data: [], nextCursor: null })
        expectExit(flagOverEnv, 3)
        assert.strictEqual(
          expectExit(unknownProfile, 2).stderr.trim(),
          'codex: no profile "staging" in the config file (it has: local, down)'
        )
        assert.match(expectExit(badFile, 2).stderr, /^codex: cannot read the config file .*missing\.json: NotFound/)
      }),
    spawning
  )

  it.effect(
    "bad input: the server's refusals exit 1 with the problem, the command line's exit 2 with why",
    () =>
      Effect.gen(function* () {
        const { baseUrl } = yield* TestServer
        const { env } = yield* tenantEnv
        const runs = yield* Effect.all(
          [
            codex(["endpoints", "create", "not a url"], { env }),
            codex(["endpoints", "get", "ep_missing", "--json"], { env }),
            codex(["events", "publish", "/no/such/event.json"], { env }),
            codex(["events", "publish", "--type", "order.created"], { env, stdin: "{not json" }),
            codex(["tenants", "list", "--limit", "lots"], { env }),
            codex(["deliveries", "list", "--status", "lost"], { env }),
            codex(["endpoints", "update", "ep_x"], { env }),
            codex(["endpoints", "list"], { env: { CODEX_URL: baseUrl } }),
            codex(["endpoints", "list", "--tenant", "ten_x"], { env: { CODEX_URL: baseUrl } }),
            codex(["events", "list", "--since", "yesterday"], { env })
          ],
          { concurrency: 3 }
        )
        const [badUrl, missing, noFile, notJson, badLimit, badStatus, nothing, noKey, tenantNoToken, badSince] = runs
        assert.deepStrictEqual(expectExit(badUrl, 1).stderr.split("\n").slice(0, 2), [
          "codex: 400 Bad Request: Request validation failed",
          "  payload.url: must be an absolute http(s) URL"
        ])
        assert.strictEqual(missing?.stdout, "")
        assert.strictEqual((JSON.parse(expectExit(missing, 1).stderr) as { status: number }).status, 404)
        assert.match(expectExit(noFile, 2).stderr, /^codex: cannot read \/no\/such\/event\.json: NotFound/)
        assert.match(expectExit(notJson, 2).stderr, /^codex: stdin is not JSON/)
        assert.strictEqual(expectExit(badLimit, 2).stderr.split("\n")[1], "  See: codex tenants list --help")
        assert.include(expectExit(badStatus, 2).stderr, "--status")
        assert.match(expectExit(nothing, 2).stderr, /^codex: nothing to change/)
        assert.match(expectExit(noKey, 2).stderr, /^codex: this command acts as a tenant: set CODEX_API_KEY/)
        assert.match(expectExit(tenantNoToken, 2).stderr, /^codex: --tenant acts with the admin token/)
        assert.match(expectExit(badSince, 2).stderr, /^codex: not a time: yesterday/)
        for (const run of runs) assert.notInclude(run?.stderr ?? "", "    at ", "no stack trace")
      }),
    spawning
  )

  it.effect(
    "a server that is down: exit 3, naming the address and what to check",
    () =>
      Effect.gen(function* () {
        const down = yield* closedUrl
        const [admin, tenant] = yield* Effect.all(
          [
            codex(["tenants", "list"], { env: { CODEX_URL: down } }),
            codex(["events", "list", "--json"], { env: { CODEX_URL: down, CODEX_API_KEY: "ck_x" } })
          ],
          { concurrency: 2 }
        )
        assert.deepStrictEqual(expectExit(admin, 3).stderr.split("\n").slice(0, 2), [
          `codex: cannot reach ${down} (ECONNREFUSED)`,
          "  Is the server running? Set its address with --url, CODEX_URL or a profile (codex --help)."
        ])
        assert.strictEqual(expectExit(tenant, 3).stdout, "")
      }),
    spawning
  )

  it.effect(
    "migrate: applies the migrations to a fresh database; a failure exits 1",
    () =>
      Effect.gen(function* () {
        const down = (yield* closedUrl).replace("http://", "postgres://postgres@")
        const failed = expectExit(yield* codex(["migrate", "--database-url", `${down}/codex`]), 1)
        assert.match(failed.stderr, /codex: the migrations did not complete \(exit 1\)/)

        const mode = inject("testDatabase")
        if (mode.kind === "pglite") {
          const dir = yield* tempDir
          assert.include(ok(yield* codex(["migrate"], { env: { PGLITE_DIR: dir } })), "applied migrations")
          return
        }
        const name = `codex_cli_${Date.now().toString(36)}`
        const onDatabase = <A>(url: string, statement: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>) =>
          Effect.gen(function* () {
            return yield* statement(yield* SqlClient.SqlClient)
          }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 })), Effect.orDie)
        yield* Effect.acquireRelease(
          onDatabase(mode.adminUrl, (sql) => sql`CREATE DATABASE ${sql(name)}`),
          () => onDatabase(mode.adminUrl, (sql) => sql`DROP DATABASE IF EXISTS ${sql(name)} WITH (FORCE)`)
        )
        const url = withDatabase(mode.adminUrl, name)
        ok(yield* codex(["migrate", "--database-url", url]))
        const [row] = yield* onDatabase(
          url,
          (sql) => sql<{ readonly applied: number }>`SELECT count(*)::int AS applied FROM codex_migrations`
        )
        const files = readdirSync(join(packageRoot, "migrations")).filter((f) => f.endsWith(".sql"))
        assert.strictEqual(row?.applied, files.length)
      }),
    spawning
  )
})
