// @module-tag chromium
import { randomBytes } from "node:crypto"
import { mkdirSync } from "node:fs"
import { createServer } from "node:http"
import { join } from "node:path"
import { assert, layer } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { type Browser, chromium, type Page } from "playwright-core"
import { packageRoot } from "../src/domain/PackageInfo.ts"
import { fastWorker } from "./support/deliveryApi.ts"
import { createTenant, request } from "./support/http.ts"
import { poll } from "./support/poll.ts"
import { freePort } from "./support/ports.ts"
import { answer, makeReceiver } from "./support/receiver.ts"
import { TestServer, testServer } from "./support/testServer.ts"
import { slack } from "./support/timing.ts"
import { chromiumPath } from "./support/tools.ts"

/**
 * The tenant portal in a real browser (Debian's Chromium, driven by playwright-core), on the real server with its
 * delivery worker and a real receiver on 127.0.0.1: open a portal link, add an endpoint, send a test event and watch
 * its attempt appear, see a delivery published through the API, retry it, rotate the secret; an expired, forged or
 * revoked token and another tenant's ids get nothing; the keyboard reaches every main action; under its CSP nothing
 * is refused and nothing logs an error; only the site PORTAL_FRAME_ANCESTORS names may frame it. Screenshots of the
 * main screens, light and dark, go to test-results/screenshots/ (`UPDATE_SCREENSHOTS=1`: docs/screenshots/, two of
 * which are in the README). `.ci/run` installs Chromium;
 * without it (outside CI) this file skips.
 */

/** The one site allowed to frame the portal (PORTAL_FRAME_ANCESTORS), on a port chosen before the server starts. */
const framingPort = await freePort()
const framingOrigin = `http://localhost:${framingPort}`

// Each run saves them under test-results/ (ignored by git, kept by CI); UPDATE_SCREENSHOTS=1 writes the committed
// copies in docs/screenshots/ instead, so that a test run never changes tracked files.
const screenshots =
  process.env.UPDATE_SCREENSHOTS === "1"
    ? join(packageRoot, "docs", "screenshots")
    : join(packageRoot, "test-results", "screenshots")
mkdirSync(screenshots, { recursive: true })

const launch = Effect.acquireRelease(
  Effect.promise(() =>
    chromium.launch({
      executablePath: chromiumPath(),
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync"
      ]
    })
  ),
  (browser: Browser) => Effect.promise(() => browser.close())
)

/** A page, and everything wrong it reports: console errors, uncaught exceptions, CSP violations, failed loads. */
const watchedPage = (browser: Browser, colorScheme: "light" | "dark" = "light") =>
  Effect.promise(async () => {
    const page = await browser.newPage({ colorScheme, viewport: { width: 1200, height: 900 } })
    const problems: Array<string> = []
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console: ${message.text()}`)
    })
    page.on("pageerror", (error) => problems.push(`exception: ${error.message}`))
    page.on("requestfailed", (failed) => problems.push(`failed: ${failed.url()}`))
    await page.exposeFunction("reportViolation", (violation: string) => problems.push(`csp: ${violation}`))
    await page.addInitScript({
      content: `document.addEventListener("securitypolicyviolation", (e) =>
        window.reportViolation(e.effectiveDirective + " " + e.blockedURI))`
    })
    return { page, problems }
  })

const browse = <A>(f: () => Promise<A>) => Effect.promise(f)

const shot = (page: Page, name: string) =>
  browse(() => page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true }))

/** A session's link, opened by the admin API for `tenantId`. */
const portalLink = (tenantId: string, body: Record<string, unknown> = {}) =>
  Effect.map(request(`/admin/tenants/${tenantId}/portal-sessions`, { json: body }), (response) => {
    assert.strictEqual(response.status, 201, response.text)
    return JSON.parse(response.text) as { readonly id: string; readonly url: string }
  })

const json = <A>(path: string, bearer: string, body?: unknown) =>
  Effect.map(request(path, body === undefined ? { bearer } : { bearer, json: body }), (response) => {
    assert.isBelow(response.status, 300, response.text)
    return JSON.parse(response.text) as A
  })

layer(
  testServer({
    config: {
      delivery: fastWorker(),
      portal: { sessionTtl: Duration.hours(1), frameAncestors: [framingOrigin] }
    }
  }),
  { excludeTestServices: true, timeout: "120 seconds" }
)("the tenant portal in Chromium", (it) => {
  it.effect(
    "add an endpoint, test it, see a published delivery, retry it, rotate the secret: no error, no CSP refusal",
    () =>
      Effect.gen(function* () {
        const { baseUrl } = yield* TestServer
        const receiver = yield* makeReceiver((_, __, res) => answer(res, 200, { "content-type": "text/plain" }, "ok"))
        const tenant = yield* createTenant("Acme")
        const link = yield* portalLink(tenant.tenantId)
        const browser = yield* launch
        const { page, problems } = yield* watchedPage(browser)

        // The link opens the portal; the token leaves the address bar at once and stays in this tab only.
        const response = yield* browse(() => page.goto(link.url))
        const policy = response?.headers()["content-security-policy"] ?? ""
        assert.match(policy, /^default-src 'none'; script-src 'self' 'sha256-[A-Za-z0-9+/=]+'; style-src 'self';/)
        assert.include(policy, `frame-ancestors ${framingOrigin}`)
        assert.isUndefined(response?.headers()["x-frame-options"])
        yield* browse(() => page.getByRole("heading", { name: "Endpoints", level: 1 }).waitFor())
        // The promise: a first paint within a second on loopback (an idle machine; slack for a loaded one).
        const firstPaint = yield* browse(
          () => page.evaluate("performance.getEntriesByName('first-contentful-paint')[0]?.startTime") as Promise<number>
        )
        assert.isBelow(firstPaint, slack(334))
        assert.strictEqual(page.url(), `${baseUrl}/portal#/endpoints`)
        assert.match(
          String(yield* browse(() => page.evaluate("sessionStorage.getItem('codex.portal.token')"))),
          /^cps_/
        )
        yield* browse(() => page.getByText("No endpoints yet.").waitFor())
        yield* shot(page, "portal-endpoints-empty")

        // Add an endpoint at the receiver.
        yield* browse(async () => {
          await page.getByLabel("URL").fill(receiver.url)
          await page.getByLabel("Description").fill("Orders service")
          await page.getByRole("button", { name: "Add endpoint" }).click()
          await page.getByRole("heading", { name: "Orders service", level: 1 }).waitFor()
        })
        const [endpoint] = (yield* json<{ data: ReadonlyArray<{ id: string }> }>("/v1/endpoints", tenant.apiKey)).data
        if (endpoint === undefined) return assert.fail("the endpoint was not created")
        assert.strictEqual(page.url(), `${baseUrl}/portal#/endpoints/${endpoint.id}`)

        // Send a test event: its attempt appears (the page follows the delivery while it is pending).
        yield* browse(async () => {
          await page.getByRole("button", { name: "Send test event" }).click()
          await page.getByRole("table", { name: "Attempts" }).getByText("succeeded").waitFor({ timeout: 20_000 })
        })
        assert.strictEqual(receiver.requests.length, 1)
        assert.strictEqual((JSON.parse(receiver.requests[0]?.body ?? "{}") as { type?: string }).type, "codex.test")
        yield* browse(() => page.getByRole("button", { name: "Refresh health" }).click())
        yield* browse(() => page.getByText("100% of 1 attempts").waitFor())
        yield* shot(page, "portal-endpoint-light")

        // An event published through the API: its delivery is in the log, with its attempt; retried, a second one.
        const published = yield* json<{ event: { id: string } }>("/v1/events", tenant.apiKey, {
          type: "order.created",
          data: { orderId: "o_123", amount: 4200 }
        })
        const [delivery] = (yield* json<{ data: ReadonlyArray<{ id: string }> }>(
          `/v1/events/${published.event.id}/deliveries`,
          tenant.apiKey
        )).data
        if (delivery === undefined) return assert.fail("no delivery")
        yield* browse(async () => {
          await page.getByRole("link", { name: "Deliveries", exact: true }).click()
          await page.getByRole("heading", { name: "Deliveries", level: 1 }).waitFor()
          await page.getByRole("link", { name: `Delivery ${delivery.id}` }).click()
          const attempts = page.getByRole("table", { name: "Attempts" })
          await attempts.getByRole("row").nth(1).getByText("succeeded").waitFor({ timeout: 20_000 })
          await page.getByRole("button", { name: "Retry delivery" }).click()
          await attempts.getByRole("row").nth(2).getByText("succeeded").waitFor({ timeout: 20_000 })
        })
        yield* poll(
          "the retry to reach the receiver",
          Effect.sync(() => receiver.requests.filter((r) => r.headers["webhook-id"] === published.event.id).length),
          (n) => n === 2
        )
        yield* shot(page, "portal-delivery-light")

        // The log, searched by status.
        yield* browse(async () => {
          await page.getByRole("link", { name: "Deliveries", exact: true }).click()
          await page.getByLabel("Status").selectOption("succeeded")
          await page.getByRole("button", { name: "Search" }).click()
          await page.getByRole("link", { name: `Delivery ${delivery.id}` }).waitFor()
        })
        yield* shot(page, "portal-deliveries-light")

        // Reveal the secret, rotate it: the page shows the new one, which the API now signs with.
        const accept = (dialog: { accept: () => Promise<void> }) => void dialog.accept()
        page.on("dialog", accept)
        const [before, after] = yield* browse(async () => {
          await page.getByRole("link", { name: "Endpoints", exact: true }).click()
          await page.getByRole("link", { name: receiver.url }).click()
          await page.getByRole("button", { name: "Reveal secret" }).click()
          const secret = page.getByTestId("secret")
          const old = await secret.textContent()
          await page.getByRole("button", { name: "Rotate secret" }).click()
          await page.getByText("Signing secret rotated.").waitFor()
          return [old, await secret.textContent()]
        })
        const secret = yield* json<{ secret: string; previousSecret: string | null }>(
          `/v1/endpoints/${endpoint.id}/secret`,
          tenant.apiKey
        )
        assert.match(before ?? "", /^whsec_/)
        assert.strictEqual(after, secret.secret)
        assert.strictEqual(before, secret.previousSecret)

        // The operational events the page's actions caused, on their own screen.
        yield* browse(async () => {
          await page.getByRole("link", { name: "Operational events", exact: true }).click()
          await page.getByRole("cell", { name: "codex.endpoint.created" }).waitFor()
        })
        yield* shot(page, "portal-operational-light")

        assert.deepStrictEqual(problems, [])
      }).pipe(Effect.scoped),
    90_000
  )

  it.effect(
    "dark and light follow the system; the keyboard reaches every main action and can do them",
    () =>
      Effect.gen(function* () {
        const receiver = yield* makeReceiver((_, __, res) => answer(res, 204))
        const tenant = yield* createTenant("Keyboard")
        yield* json("/v1/event-types", tenant.apiKey, {
          name: "order.created",
          description: "An order was placed.",
          schema: { type: "object", properties: { orderId: { type: "string" } }, required: ["orderId"] },
          examples: [{ orderId: "o_123" }]
        })
        const browser = yield* launch
        const textColour = (page: Page) =>
          browse(() => page.evaluate("getComputedStyle(document.body).color") as Promise<string>)
        const light = yield* watchedPage(browser, "light")
        const dark = yield* watchedPage(browser, "dark")
        for (const { page } of [light, dark]) {
          const link = yield* portalLink(tenant.tenantId)
          yield* browse(() => page.goto(link.url))
          yield* browse(() => page.getByRole("heading", { name: "Endpoints", level: 1 }).waitFor())
        }
        assert.notStrictEqual(yield* textColour(light.page), yield* textColour(dark.page))

        // Tab from the top: the skip link, every screen, the form's fields, its button.
        const { page, problems } = dark
        const reached: Array<string> = []
        for (let i = 0; i < 40; i++) {
          yield* browse(() => page.keyboard.press("Tab"))
          reached.push(
            String(
              yield* browse(() =>
                page.evaluate(`(() => {
                const el = document.activeElement
                const label = el.labels?.[0]?.textContent ?? el.getAttribute("aria-label") ?? el.textContent
                return el.tagName + ":" + (label ?? "").trim().replace(/\\s+/g, " ").slice(0, 40)
              })()`)
              )
            )
          )
        }
        for (const expected of [
          "A:Skip to content",
          "A:Endpoints",
          "A:Deliveries",
          "A:Events",
          "A:Event types",
          "A:Operational events",
          "INPUT:URL",
          "INPUT:Description",
          "INPUT:order.created",
          "BUTTON:Add endpoint"
        ]) {
          assert.include(reached, expected, `Tab reaches ${expected}: ${reached.join(" | ")}`)
        }
        // A focused control shows it (Pico's focus ring).
        const ring = yield* browse(
          () =>
            page.evaluate(
              "(() => { const s = getComputedStyle(document.activeElement); return s.boxShadow + ' ' + s.outlineStyle })()"
            ) as Promise<string>
        )
        assert.notStrictEqual(ring, "none none")

        // The whole of adding an endpoint and testing it, by keyboard alone.
        yield* browse(async () => {
          await page.getByLabel("URL").focus()
          await page.keyboard.type(receiver.url)
          await page.keyboard.press("Tab")
          await page.keyboard.type("Keyboard only")
          await page.keyboard.press("Tab")
          await page.keyboard.press("Space")
          await page.keyboard.press("Tab")
          await page.keyboard.press("Enter")
          await page.getByRole("heading", { name: "Keyboard only", level: 1 }).waitFor()
        })
        yield* shot(page, "portal-endpoint-dark")
        let focusedTest = false
        for (let i = 0; i < 30 && !focusedTest; i++) {
          yield* browse(() => page.keyboard.press("Tab"))
          focusedTest = (yield* browse(() => page.evaluate("document.activeElement.textContent"))) === "Send test event"
        }
        assert.isTrue(focusedTest, "Tab reaches Send test event")
        yield* browse(() => page.keyboard.press("Enter"))
        yield* browse(() =>
          page.getByRole("table", { name: "Attempts" }).getByText("succeeded").waitFor({ timeout: 20_000 })
        )
        const [endpoint] = (yield* json<{ data: ReadonlyArray<{ eventTypes: ReadonlyArray<string> }> }>(
          "/v1/endpoints",
          tenant.apiKey
        )).data
        assert.deepStrictEqual(endpoint?.eventTypes, ["order.created"], "the catalog's type, ticked with Space")

        // The catalog, its schema and examples.
        yield* browse(async () => {
          await page.getByRole("link", { name: "Event types", exact: true }).click()
          await page.getByText("order.created").click()
          await page.getByLabel("Schema of order.created").waitFor()
        })
        yield* shot(page, "portal-event-types-dark")
        yield* shot(light.page, "portal-endpoints-light")
        yield* browse(() => light.page.emulateMedia({ colorScheme: "dark" }))
        yield* browse(() => light.page.reload())
        yield* browse(() =>
          light.page
            .getByRole("link", { name: /Keyboard only|127\.0\.0\.1/ })
            .first()
            .waitFor()
        )
        yield* shot(light.page, "portal-endpoints-dark")
        assert.deepStrictEqual([...problems, ...light.problems], [])
      }).pipe(Effect.scoped),
    90_000
  )

  it.effect(
    "an expired, forged or revoked token and another tenant's ids get nothing",
    () =>
      Effect.gen(function* () {
        const { baseUrl } = yield* TestServer
        const mine = yield* createTenant("Mine")
        const theirs = yield* createTenant("Theirs")
        const theirEndpoint = yield* json<{ id: string }>("/v1/endpoints", theirs.apiKey, {
          url: "http://127.0.0.1:1029/hook",
          description: "Their endpoint"
        })
        const theirEvent = yield* json<{ event: { id: string } }>("/v1/events", theirs.apiKey, {
          type: "secret.thing",
          data: { secret: "theirs" }
        })
        const browser = yield* launch
        const ended = (page: Page) =>
          browse(() => page.getByRole("heading", { name: "Your session has ended" }).waitFor())

        // Forged: a well-formed token nobody issued.
        const forged = yield* watchedPage(browser)
        yield* browse(() => forged.page.goto(`${baseUrl}/portal#token=cps_${randomBytes(32).toString("base64url")}`))
        yield* ended(forged.page)

        // Expired: a one-second session, once the API refuses it.
        const short = yield* portalLink(mine.tenantId, { expiresIn: 1 })
        const token = new URL(short.url).hash.slice("#token=".length)
        yield* poll(
          "the session to expire",
          Effect.map(request("/v1/endpoints", { bearer: token }), (r) => r.status),
          (status) => status === 401
        )
        const expired = yield* watchedPage(browser)
        yield* browse(() => expired.page.goto(short.url))
        yield* ended(expired.page)

        // Another tenant's ids: not found, and nothing of theirs in the lists.
        const link = yield* portalLink(mine.tenantId)
        const { page } = yield* watchedPage(browser)
        yield* browse(() => page.goto(link.url))
        yield* browse(() => page.getByText("No endpoints yet.").waitFor())
        for (const hash of [`#/endpoints/${theirEndpoint.id}`, `#/events/${theirEvent.event.id}`]) {
          yield* browse(() => page.evaluate(`location.hash = ${JSON.stringify(hash)}`))
          yield* browse(() =>
            page
              .getByRole("alert")
              .getByText(/^No (endpoint|event) with this id\.$/)
              .first()
              .waitFor()
          )
        }
        yield* browse(async () => {
          await page.getByRole("link", { name: "Events", exact: true }).click()
          await page.getByText("No events.").waitFor()
        })
        assert.notInclude(yield* browse(() => page.content()), "Their endpoint")

        // Revoked while open: the next call ends the session on the page.
        assert.strictEqual((yield* request(`/admin/portal-sessions/${link.id}`, { method: "DELETE" })).status, 204)
        yield* browse(() => page.getByRole("button", { name: "Refresh" }).click())
        yield* ended(page)
        assert.isNull(yield* browse(() => page.evaluate("sessionStorage.getItem('codex.portal.token')")))
      }).pipe(Effect.scoped),
    90_000
  )

  it.effect(
    "only the site PORTAL_FRAME_ANCESTORS names may frame the portal",
    () =>
      Effect.gen(function* () {
        const tenant = yield* createTenant("Embedded")
        const link = yield* portalLink(tenant.tenantId)
        const framing = (port: number) =>
          Effect.acquireRelease(
            Effect.promise(async () => {
              const server = createServer((_, res) => {
                res.writeHead(200, { "content-type": "text/html" })
                res.end(`<!doctype html><iframe title="portal" src="${link.url}" width="1000" height="700"></iframe>`)
              })
              await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve))
              return server
            }),
            (server) => Effect.promise(() => new Promise<void>((resolve) => server.close(() => resolve())))
          )
        yield* framing(framingPort)
        const stranger = yield* Effect.promise(freePort)
        yield* framing(stranger)
        const browser = yield* launch

        const allowed = yield* browse(() => browser.newPage())
        yield* browse(() => allowed.goto(`${framingOrigin}/`))
        yield* browse(() =>
          allowed.frameLocator("iframe").getByRole("heading", { name: "Endpoints", level: 1 }).waitFor()
        )

        const refused = yield* browse(() => browser.newPage())
        yield* browse(() => refused.goto(`http://localhost:${stranger}/`))
        const framed = yield* poll(
          "the frame to settle",
          Effect.sync(() => refused.frames()[1]?.url()),
          (url): url is string => url !== undefined && url !== "" && url !== "about:blank"
        )
        assert.strictEqual(framed, "chrome-error://chromewebdata/")
      }).pipe(Effect.scoped),
    90_000
  )
})
