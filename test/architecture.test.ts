import { readdirSync, readFileSync } from "node:fs"
import { dirname, join, normalize, relative } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { packageRoot } from "../src/domain/PackageInfo.ts"

/**
 * The dependency rule of the layout (README, "Layout"), over the import graph of the production code:
 *
 * - `src/domain`: pure functions and types; imports only `src/domain`.
 * - `services/`: interfaces; import `services/` and `src/domain`.
 * - `layers/`: implementations; import `layers/`, `services/` and `src/domain`.
 * - `src/api` (the contract): imports `src/api`, `services/` and `src/domain`.
 * - the rest of `src/` (handlers, HTTP middleware): imports `src/`, `services/` and `src/domain`, never a layer.
 * - `packages/client/src` (the typed client): imports itself and the contract (`src/api`, `src/domain`), nothing of
 *   the server's implementation.
 * - `src/cli` (the `codex` command): talks to the server only through the client package (and reads `src/domain`);
 *   never the server's code.
 * - the wiring (`src/App.ts`, `src/Foundation.ts`, the entry points, `src/seed/`): anything.
 *
 * And test doubles live in `test/support/`: nothing in production code is exported under a test name or imports
 * from `test/`.
 */

type Area = "domain" | "services" | "layers" | "contract" | "src" | "client" | "cli" | "wiring" | "test" | "other"

const wiring = new Set(["src/App.ts", "src/Foundation.ts", "src/main.ts", "src/worker.ts", "src/migrate.ts"])

const areaOf = (path: string): Area => {
  if (wiring.has(path) || path.startsWith("src/seed/")) return "wiring"
  if (path.startsWith("src/domain/")) return "domain"
  if (path.startsWith("src/api/")) return "contract"
  if (path.startsWith("src/cli/")) return "cli"
  if (path.startsWith("src/")) return "src"
  if (path.startsWith("packages/client/src/")) return "client"
  if (path.startsWith("services/")) return "services"
  if (path.startsWith("layers/")) return "layers"
  if (path.startsWith("test/")) return "test"
  return "other"
}

const allowed: Record<"domain" | "services" | "layers" | "contract" | "src" | "client" | "cli", ReadonlyArray<Area>> = {
  domain: ["domain"],
  services: ["services", "domain"],
  layers: ["layers", "services", "domain"],
  contract: ["contract", "services", "domain"],
  src: ["src", "contract", "services", "domain"],
  client: ["client", "contract", "domain"],
  cli: ["cli", "client", "domain"]
}

const sourceFiles = (folder: string): Array<string> =>
  readdirSync(join(packageRoot, folder), { recursive: true, encoding: "utf8" })
    .filter((name) => name.endsWith(".ts"))
    .map((name) => join(folder, name))

const productionFiles = [
  ...sourceFiles("src"),
  ...sourceFiles("services"),
  ...sourceFiles("layers"),
  ...sourceFiles("packages/client/src")
]

/** Relative imports and re-exports of a file (`from "./x.ts"`, `import("./x.ts")`), as paths from the root. */
const importsOf = (file: string): Array<string> => {
  const text = readFileSync(join(packageRoot, file), "utf8")
  return [...text.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)].map((match) =>
    normalize(join(dirname(file), match[1] ?? ""))
  )
}

/** Every import that breaks the rule, as `from -> to`. */
const ruleBreaks = (files: ReadonlyArray<string>, imports: (file: string) => ReadonlyArray<string>) =>
  files.flatMap((file) => {
    const from = areaOf(file)
    if (from === "wiring" || from === "test" || from === "other") {
      return imports(file)
        .filter((target) => from !== "test" && areaOf(target) === "test")
        .map((target) => `${file} -> ${target}`)
    }
    return imports(file)
      .filter((target) => !allowed[from].includes(areaOf(target)))
      .map((target) => `${file} -> ${target}`)
  })

describe("the layout's dependency rule", () => {
  it("holds for every import of src/, services/ and layers/", () => {
    assert.isAbove(productionFiles.length, 50, "the production files were found")
    assert.deepStrictEqual(ruleBreaks(productionFiles, importsOf), [])
  })

  it("is broken by a layer imported from a handler, an HTTP module imported from a layer or the contract, services from domain, or the server from the client or the CLI", () => {
    const graph: Record<string, ReadonlyArray<string>> = {
      "src/http/Routes.ts": ["layers/TenantsLive.ts", "services/Tenants.ts", "src/domain/Ids.ts"],
      "layers/AppConfigLive.ts": ["src/http/ClientIp.ts", "src/domain/ClientIp.ts"],
      "src/domain/ClientIp.ts": ["services/AppConfig.ts"],
      "services/Tenants.ts": ["layers/TenantsLive.ts"],
      "src/App.ts": ["layers/TenantsLive.ts", "test/support/appConfig.ts"],
      "src/api/Api.ts": ["src/http/Auth.ts", "src/api/AdminApi.ts"],
      "packages/client/src/client.ts": ["src/http/Routes.ts", "src/api/Api.ts", "packages/client/src/credentials.ts"],
      "src/cli/Tenants.ts": ["src/api/Api.ts", "layers/Database.ts", "packages/client/src/client.ts"]
    }
    assert.deepStrictEqual(
      ruleBreaks(Object.keys(graph), (file) => graph[file] ?? []),
      [
        "src/http/Routes.ts -> layers/TenantsLive.ts",
        "layers/AppConfigLive.ts -> src/http/ClientIp.ts",
        "src/domain/ClientIp.ts -> services/AppConfig.ts",
        "services/Tenants.ts -> layers/TenantsLive.ts",
        "src/App.ts -> test/support/appConfig.ts",
        "src/api/Api.ts -> src/http/Auth.ts",
        "packages/client/src/client.ts -> src/http/Routes.ts",
        "src/cli/Tenants.ts -> src/api/Api.ts",
        "src/cli/Tenants.ts -> layers/Database.ts"
      ]
    )
  })

  it("keeps test doubles out of production code", () => {
    const exported = productionFiles.flatMap((file) =>
      [
        ...readFileSync(join(packageRoot, file), "utf8").matchAll(
          /export\s+(?:const|let|function|class|type|interface)\s+(\w+)/g
        )
      ]
        .map((match) => match[1] ?? "")
        .filter((name) => /^test[A-Z]|Tests?$|Double$|Fake$/.test(name))
        .map((name) => `${relative(packageRoot, join(packageRoot, file))}: ${name}`)
    )
    assert.deepStrictEqual(exported, [], "test doubles belong in test/support/")
  })
})
