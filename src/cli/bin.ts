#!/usr/bin/env node
/** `codex`, the project's command-line tool (README "From the terminal"): `npx codex --help`. */
import { enableCompileCache } from "node:module"

// Before the ~600 modules of Effect load: later runs reuse their compiled code (about a fifth of the start-up).
enableCompileCache()
const { runCli } = await import("./Cli.ts")
runCli(process.argv.slice(2))
