// Reads the Dockerfile for .ci/infra-checks: checks the rules issue 7 sets for the image (a lint of our own, beside
// dockerfile-utils) and prints, as JSON, the runtime stage's facts that the local runtime test then executes: user,
// environment, entrypoint + command, healthcheck command and the production install command.
//
// Usage: node .ci/dockerfile-facts.mjs Dockerfile package.json .dockerignore
import { readFileSync } from "node:fs"

const [dockerfilePath, packagePath, ignorePath] = process.argv.slice(2)
const text = readFileSync(dockerfilePath, "utf8").replace(/\\\n/g, " ")
const pkg = JSON.parse(readFileSync(packagePath, "utf8"))
const problems = []
const expect = (ok, message) => {
  if (!ok) problems.push(message)
}

/** Instructions grouped by stage: [{ name, from, instructions: [{ keyword, args }] }]. */
const stages = []
for (const raw of text.split("\n")) {
  const line = raw.trim()
  if (line === "" || line.startsWith("#")) continue
  const [, keyword = "", args = ""] = /^(\S+)\s*(.*)$/.exec(line) ?? []
  const upper = keyword.toUpperCase()
  if (upper === "FROM") {
    const [, from = "", name = ""] = /^(\S+)(?:\s+AS\s+(\S+))?/i.exec(args) ?? []
    stages.push({ name, from, instructions: [] })
  } else if (stages.length > 0) {
    stages.at(-1).instructions.push({ keyword: upper, args })
  } else if (upper !== "ARG") {
    problems.push(`${upper} before the first FROM`)
  }
}

const json = (args, what) => {
  try {
    const value = JSON.parse(args)
    if (Array.isArray(value) && value.every((v) => typeof v === "string")) return value
  } catch {}
  problems.push(`${what} must use the exec (JSON array) form: ${args}`)
  return []
}
const all = (stage, keyword) => stage.instructions.filter((i) => i.keyword === keyword)
const last = (stage, keyword) => all(stage, keyword).at(-1)

// Base images: Node in step with the `node` devDependency (the Node every npm script runs on), Alpine.
const nodeVersion = pkg.devDependencies?.node
for (const stage of stages.filter((s) => s.from.startsWith("node:"))) {
  expect(
    stage.from === `node:${nodeVersion}-alpine`,
    `stage ${stage.name}: FROM ${stage.from}, expected node:${nodeVersion}-alpine (package.json devDependencies.node)`
  )
}
const runtime = stages.at(-1)
expect(runtime?.name === "runtime", "the last stage must be named runtime")
expect(stages.length >= 3, "multi-stage: dependencies, build and runtime stages")

const runs = runtime.instructions.filter((i) => i.keyword === "RUN").map((i) => i.args)
const prodDeps = stages.find((s) => s.name === "prod-deps")
const prodInstall = prodDeps ? all(prodDeps, "RUN").find((i) => /npm ci\b/.test(i.args)) : undefined
expect(prodInstall && /--omit=dev/.test(prodInstall.args), "production dependencies with npm ci --omit=dev")
expect(
  all(runtime, "COPY").some((i) => /--from=prod-deps\s+\S*node_modules/.test(i.args)),
  "runtime copies node_modules from prod-deps"
)
for (const needed of ["package.json", "migrations", "dist"]) {
  expect(
    all(runtime, "COPY").some((i) =>
      i.args.split(/\s+/).some((a) => a.replace(/^.*\//, "") === needed || a === needed)
    ),
    `runtime stage must COPY ${needed} (the app finds package.json and migrations/ next to dist/)`
  )
}
expect(
  stages.every((s) => all(s, "ADD").length === 0),
  "use COPY, not ADD (no remote URLs or implicit archive extraction)"
)

const user = last(runtime, "USER")?.args ?? ""
expect(/^[1-9]\d*(:[1-9]\d*)?$/.test(user), `runtime USER must be a numeric non-root uid (runAsNonRoot), got "${user}"`)
const entrypoint = json(last(runtime, "ENTRYPOINT")?.args ?? "null", "ENTRYPOINT")
expect(entrypoint[0] === "dumb-init", "dumb-init must be PID 1 (ENTRYPOINT)")
expect(
  runs.some((r) => /apk add --no-cache dumb-init/.test(r)),
  "dumb-init installed with apk add --no-cache in the runtime stage"
)
const cmd = json(last(runtime, "CMD")?.args ?? "null", "CMD")
expect(cmd.join(" ") === "node dist/src/main.js", `CMD must run node dist/src/main.js, got ${cmd.join(" ")}`)

const healthcheckArgs = last(runtime, "HEALTHCHECK")?.args ?? ""
const healthcheck = json(healthcheckArgs.replace(/^.*?\bCMD\s+/, ""), "HEALTHCHECK CMD")
expect(healthcheck[0] === "node" && /\/livez/.test(healthcheck.join(" ")), "HEALTHCHECK must probe /livez with node")
expect(!/curl|wget/.test(healthcheckArgs), "HEALTHCHECK must not need curl or wget")

// ENV values may use the stage's ARG defaults (`APP_ENV=${APP_ENV}`).
const argDefaults = Object.fromEntries(
  all(runtime, "ARG").map((i) => {
    const [name, value = ""] = i.args.split("=")
    return [name, value]
  })
)
const env = {}
for (const { args } of all(runtime, "ENV")) {
  for (const [, key, value] of args.matchAll(/([A-Z_][A-Z0-9_]*)=("[^"]*"|\S+)/g))
    env[key] = value.replace(/^"|"$/g, "").replace(/\$\{(\w+)\}/g, (_, arg) => argDefaults[arg] ?? "")
}
expect(env.NODE_ENV === "production", "NODE_ENV=production in the runtime stage")
expect("APP_ENV" in env, "APP_ENV set in the runtime stage (from a build ARG)")
const labels = all(runtime, "LABEL")
  .map((i) => i.args)
  .join(" ")
for (const label of ["source", "version", "revision"]) {
  expect(labels.includes(`org.opencontainers.image.${label}=`), `OCI label org.opencontainers.image.${label}`)
}
expect(
  Number(all(runtime, "EXPOSE")[0]?.args) === 3000 && env.PORT === "3000",
  "EXPOSE 3000 and PORT=3000 in the runtime stage"
)

// .dockerignore: an allowlist, so .git, tests, .env files and local data can never enter the build context.
const ignore = readFileSync(ignorePath, "utf8")
  .split("\n")
  .map((l) => l.trim())
  .filter((l) => l !== "" && !l.startsWith("#"))
expect(ignore[0] === "*", ".dockerignore must start with `*` (allowlist)")
for (const forbidden of ["test", ".git", ".env", ".data", "node_modules", "dist", "scratch"]) {
  expect(
    !ignore.some((l) => l.replace(/^!/, "").replace(/\/$/, "") === forbidden && l.startsWith("!")),
    `.dockerignore must not allow ${forbidden}`
  )
}

if (problems.length > 0) {
  console.error(`Dockerfile rules: ${problems.length} problem(s)\n  ${problems.join("\n  ")}`)
  process.exit(1)
}
const prodInstallCommand = prodInstall.args.replace(/^(--mount=\S+\s+)+/, "")
process.stdout.write(
  `${JSON.stringify({ user, env, entrypoint, cmd, healthcheck, prodInstall: prodInstallCommand, nodeVersion })}\n`
)
