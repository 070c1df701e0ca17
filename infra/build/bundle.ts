/**
 * `npm run build`'s second step (after `tsc`): each entry point the image runs — dist/src/main.js, worker.js,
 * migrate.js and the `codex` CLI's cli/bin.js — is replaced by itself bundled with its dependencies, so every command,
 * script and manifest that names those paths runs the bundle. Why: loading its ~675 modules one by one took about 400 ms of the compiled worker's
 * 550 ms from start to first delivery (`npm run bench:startup`); one file loads in about 70 ms, and the first delivery
 * comes after about 340 ms. PGlite stays outside (it loads its WebAssembly and data files next to its own module);
 * CommonJS dependencies get the `require` they expect. Source maps are kept, chained to the TypeScript sources.
 */
import { build } from "esbuild"

const entryPoints = ["dist/src/main.js", "dist/src/worker.js", "dist/src/migrate.js", "dist/src/cli/bin.js"]

await Promise.all(
  entryPoints.map((entry) =>
    build({
      entryPoints: [entry],
      outfile: entry,
      allowOverwrite: true,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node24",
      sourcemap: "linked",
      external: ["@electric-sql/pglite"],
      banner: {
        js: "import { createRequire as __bundleRequire } from 'node:module'; const require = __bundleRequire(import.meta.url);"
      },
      logLevel: "warning"
    })
  )
)
