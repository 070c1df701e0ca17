// @module-tag chromium
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { type Browser, chromium } from "playwright-core"
import { poll } from "./support/poll.ts"
import { TestServer, testServer } from "./support/testServer.ts"
import { chromiumPath } from "./support/tools.ts"

/**
 * /docs in a real browser (Debian's Chromium, driven by playwright-core): under its Content-Security-Policy the
 * reference page still renders and its "try it" client still calls the API, nothing outside the page's own scripts
 * runs, and another site cannot frame it. `.ci/run` installs Chromium; without it (outside CI) this file skips.
 */

const launch = Effect.acquireRelease(
  Effect.promise(() =>
    chromium.launch({
      executablePath: chromiumPath(),
      // As the machine's probe runs it: no sandbox as root, and no background traffic to a network that is closed.
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

/** A page on another origin that frames `url`. */
const framingSite = (url: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const server = createServer((_, res) => {
        res.writeHead(200, { "content-type": "text/html" })
        res.end(`<!doctype html><iframe id="docs" src="${url}"></iframe>`)
      })
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
      return server
    }),
    (server) => Effect.promise(() => new Promise<void>((resolve) => server.close(() => resolve())))
  ).pipe(Effect.map((server) => `http://localhost:${(server.address() as AddressInfo).port}/`))

layer(testServer({ config: { appEnv: "production" } }), { excludeTestServices: true, timeout: "60 seconds" })(
  "/docs in Chromium",
  (it) => {
    it.effect("renders and calls the API under its CSP; no foreign script, font or request; no framing", () =>
      Effect.gen(function* () {
        const { baseUrl } = yield* TestServer
        const browser = yield* launch
        const page = yield* Effect.promise(() => browser.newPage())
        const violations: Array<string> = []
        yield* Effect.promise(() =>
          page.exposeFunction("reportViolation", (violation: string) => {
            violations.push(violation)
          })
        )
        // Page code as text: it runs in the browser, not here.
        yield* Effect.promise(() =>
          page.addInitScript({
            content: `document.addEventListener("securitypolicyviolation", (e) =>
              window.reportViolation(e.effectiveDirective + " " + e.blockedURI))`
          })
        )
        const thirdParty: Array<string> = []
        page.on("request", (request) => {
          if (!request.url().startsWith(baseUrl) && !request.url().startsWith("data:")) thirdParty.push(request.url())
        })

        yield* Effect.promise(() => page.goto(`${baseUrl}/docs`))
        // The reference rendered from the contract.
        yield* Effect.promise(() => page.getByText("Liveness probe").first().waitFor({ timeout: 20_000 }))
        assert.strictEqual(yield* Effect.promise(() => page.title()), "codex-api")
        // The page's client may call this origin, and nothing else.
        const same = yield* Effect.promise(() => page.evaluate("fetch('/livez').then((r) => r.status)"))
        assert.strictEqual(same, 200)
        const foreign = yield* Effect.promise(() =>
          page.evaluate("fetch('http://127.0.0.1:9/').then(() => 'fetched', () => 'blocked')")
        )
        assert.strictEqual(foreign, "blocked")
        yield* poll(
          "the foreign fetch reported as a CSP violation",
          Effect.sync(() => [...violations]),
          (seen) => seen.some((v) => v.startsWith("connect-src"))
        )
        // Scalar probes whether `new Function` works and falls back when it does not: the only refusal expected
        // besides the foreign fetch above.
        assert.sameMembers([...new Set(violations)], ["script-src eval", "connect-src http://127.0.0.1:9/"])
        assert.deepStrictEqual(thirdParty, [])

        // Another site framing the page gets nothing.
        const site = yield* framingSite(`${baseUrl}/docs`)
        const framer = yield* Effect.promise(() => browser.newPage())
        yield* Effect.promise(() => framer.goto(site))
        // Chromium replaces a frame refused by frame-ancestors with its error page (once the frame has navigated).
        const framed = yield* poll(
          "the frame to settle",
          Effect.sync(() => framer.frames()[1]?.url()),
          (url): url is string => url !== undefined && url !== "" && url !== "about:blank"
        )
        assert.strictEqual(framed, "chrome-error://chromewebdata/")
        assert.strictEqual(framer.frames().length, 2)
      }).pipe(Effect.scoped)
    )
  }
)
