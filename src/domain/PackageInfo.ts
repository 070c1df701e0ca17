import { existsSync, readFileSync } from "node:fs"
import { dirname, join } from "node:path"

/**
 * The package root, found by walking up from this module: the same code runs from `layers/` (sources, run by Node's
 * type stripping) and from `dist/layers/` (compiled), so fixed relative paths would break one of them.
 */
const findPackageRoot = (from: string): string => {
  let dir = from
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir)
    if (parent === dir) return from
    dir = parent
  }
  return dir
}

export const packageRoot: string = findPackageRoot(import.meta.dirname)

const readVersion = (): string => {
  const parsed: unknown = JSON.parse(readFileSync(join(packageRoot, "package.json"), "utf8"))
  return typeof parsed === "object" && parsed !== null && "version" in parsed && typeof parsed.version === "string"
    ? parsed.version
    : "0.0.0"
}

export const packageVersion: string = readVersion()
