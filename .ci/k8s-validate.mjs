// Kubernetes manifest check for .ci/infra-checks, run from .ci/infra-tools (where its packages are installed).
//
// kubeconform/kubeval are Go binaries that download their JSON schemas at run time: neither installs here. Instead:
//  1. schema: every object is validated by `kubernetes-models` (JSON schemas generated from the Kubernetes OpenAPI,
//     compiled to ajv validators; `@kubernetes-models/prometheus-operator` for the ServiceMonitor): types, enums,
//     required fields.
//  2. unknown fields: those validators allow extra properties (so a typo like `imagePullPolicyy` passes), so each
//     object is also written out as a TypeScript literal typed with the same package's interface and compiled with
//     the project's tsc: excess-property checks reject any field the API does not define, at any depth.
//  3. policy: what issue 7 asks of the Deployment (probes, preStop, grace period above the drain, non-root, read-only
//     root filesystem, resources) and that every kustomization resource exists.
//
// Usage: node ../k8s-validate.mjs <tsc path> <manifest.yaml>...   (cwd: .ci/infra-tools)
import { execFileSync } from "node:child_process"
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join, resolve } from "node:path"
import { pathToFileURL } from "node:url"

const toolsDir = process.cwd()
const require = createRequire(join(toolsDir, "package.json"))
const YAML = require("yaml")
const [tsc, ...files] = process.argv.slice(2)
if (!tsc || files.length === 0) throw new Error("usage: k8s-validate.mjs <tsc> <manifest>...")

const problems = []
const fail = (where, message) => problems.push(`${where}: ${message}`)

/** apiVersion -> the kubernetes-models module that exports its kinds (the packages only export per version). */
const modulePath = (apiVersion) =>
  apiVersion.startsWith("monitoring.coreos.com/")
    ? `@kubernetes-models/prometheus-operator/${apiVersion}`
    : `kubernetes-models/${apiVersion}`

// The packages are ESM-only ("import" condition), so they are imported from a module inside the tools directory,
// where Node's resolution finds them.
const genDir = join(toolsDir, "node_modules", ".k8s-validate")
mkdirSync(genDir, { recursive: true })
writeFileSync(join(genDir, "load.mjs"), "export const load = (specifier) => import(specifier)\n")
const { load } = await import(pathToFileURL(join(genDir, "load.mjs")).href)

const objects = []
for (const file of files) {
  const docs = YAML.parseAllDocuments(readFileSync(file, "utf8"))
  for (const [index, doc] of docs.entries()) {
    if (doc.errors.length > 0) {
      fail(`${file}#${index}`, doc.errors.map((e) => e.message).join("; "))
      continue
    }
    const object = doc.toJS()
    if (object === null || object === undefined) continue
    objects.push({ file, index, object })
  }
}

let typed = 0
const declarations = []
const imports = new Map()
for (const { file, index, object } of objects) {
  const where = `${file}#${index} ${object.kind ?? "?"}/${object.metadata?.name ?? "?"}`
  if (object.kind === "Kustomization") {
    for (const resource of object.resources ?? []) {
      if (!existsSync(resolve(dirname(file), resource))) fail(where, `resource ${resource} does not exist`)
    }
    continue
  }
  if (typeof object.apiVersion !== "string" || typeof object.kind !== "string") {
    fail(where, "apiVersion and kind are required")
    continue
  }
  const path = modulePath(object.apiVersion)
  const Model = await load(path).then(
    (module) => module[object.kind],
    () => undefined
  )
  if (Model === undefined) {
    fail(where, `no schema for ${object.apiVersion} ${object.kind} (${path})`)
    continue
  }
  try {
    new Model(object).validate()
  } catch (error) {
    fail(where, `schema: ${error.message}`)
  }
  const key = `${path}#${object.kind}`
  if (!imports.has(key)) imports.set(key, `I${object.kind}${imports.size}`)
  declarations.push(`// ${where}\nexport const m${typed++}: ${imports.get(key)} = ${JSON.stringify(object, null, 2)}`)
}

// 2. Unknown fields, through the interfaces' excess-property checks.
const header = [...imports].map(([key, alias]) => {
  const [path, kind] = key.split("#")
  return `import type { I${kind} as ${alias} } from "${path}"`
})
writeFileSync(join(genDir, "manifests.ts"), `${header.join("\n")}\n\n${declarations.join("\n\n")}\n`)
writeFileSync(
  join(genDir, "tsconfig.json"),
  JSON.stringify({
    compilerOptions: {
      strict: true,
      noEmit: true,
      module: "NodeNext",
      moduleResolution: "NodeNext",
      target: "ES2022",
      skipLibCheck: true,
      types: []
    },
    files: ["manifests.ts"]
  })
)
try {
  execFileSync(process.execPath, [tsc, "-p", join(genDir, "tsconfig.json")], { stdio: "pipe", encoding: "utf8" })
} catch (error) {
  fail("unknown or mistyped fields (tsc)", `\n${error.stdout}${error.stderr}`)
}

// 3. Policy for the codex-api Deployment.
const byKind = (kind, name) => objects.find((o) => o.object.kind === kind && o.object.metadata?.name === name)?.object
const deployment = byKind("Deployment", "codex-api")
const configMap = byKind("ConfigMap", "codex-api")
if (deployment === undefined || configMap === undefined) {
  fail("policy", "the codex-api Deployment and ConfigMap must be among the checked files")
} else {
  const pod = deployment.spec.template.spec
  const container = pod.containers.find((c) => c.name === "codex-api")
  const seconds = (text) => {
    const match = /^(\d+(?:\.\d+)?) ?(seconds?|s|millis|ms)$/.exec(String(text).trim())
    if (!match) throw new Error(`cannot read duration ${text}`)
    return match[2].startsWith("m") ? Number(match[1]) / 1000 : Number(match[1])
  }
  const check = (ok, message) => ok || fail("policy Deployment/codex-api", message)
  check(container?.livenessProbe?.httpGet?.path === "/livez", "livenessProbe must GET /livez")
  check(container?.readinessProbe?.httpGet?.path === "/readyz", "readinessProbe must GET /readyz")
  const preStop = container?.lifecycle?.preStop?.sleep?.seconds ?? 0
  check(preStop > 0, "a preStop sleep is required")
  const timeout = seconds(configMap.data.SHUTDOWN_TIMEOUT)
  const delay = seconds(configMap.data.SHUTDOWN_DELAY)
  check(delay <= timeout, "SHUTDOWN_DELAY must not exceed SHUTDOWN_TIMEOUT")
  check(
    pod.terminationGracePeriodSeconds > preStop + timeout,
    `terminationGracePeriodSeconds (${pod.terminationGracePeriodSeconds}) must exceed preStop + SHUTDOWN_TIMEOUT (${preStop + timeout})`
  )
  check(pod.securityContext?.runAsNonRoot === true, "pod securityContext.runAsNonRoot must be true")
  check(container?.securityContext?.readOnlyRootFilesystem === true, "readOnlyRootFilesystem must be true")
  check(container?.securityContext?.allowPrivilegeEscalation === false, "allowPrivilegeEscalation must be false")
  check(container?.resources?.requests && container?.resources?.limits?.memory, "resources requests and a memory limit")
  const port = container?.ports?.find((p) => p.name === "http")?.containerPort
  check(String(port) === configMap.data.PORT, `containerPort ${port} must equal PORT ${configMap.data.PORT}`)
}

if (problems.length > 0) {
  console.error(`k8s manifests: ${problems.length} problem(s)\n  ${problems.join("\n  ")}`)
  process.exit(1)
}
console.log(`k8s manifests: ${objects.length} objects in ${files.length} files valid (schema, unknown fields, policy)`)
