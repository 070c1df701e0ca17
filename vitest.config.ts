import { join } from "node:path"
import { defineConfig } from "vitest/config"
import { toolTags } from "./test/support/tools.ts"

/**
 * Tests that time child processes (startup, graceful shutdown, delivery workers killed and terminated): they run after
 * the rest, two files at a time (a core each, about what one file uses: 139 s one at a time, 101 s two at a time, and
 * no faster three at a time), so their deadlines measure the code and not the CPU starvation of a loaded machine.
 */
const processTimed = [
  "test/shutdown.test.ts",
  "test/startup.test.ts",
  "test/delivery-processes.test.ts",
  "test/npm-scripts.test.ts",
  "test/embedded-database-processes.test.ts"
]

/**
 * Node's compile cache for every process the tests start (inherited through the environment): most tests start the
 * server, the worker, npm scripts or the CLI as child processes, each of which compiles the same modules again; with
 * the cache the process-timed files take 81 s instead of 101 s on a 2-core machine. A directory of the developer's
 * own (NODE_COMPILE_CACHE) is kept.
 */
process.env.NODE_COMPILE_CACHE ??= join(import.meta.dirname, "node_modules", ".cache", "node-compile-cache")

export default defineConfig(async () => ({
  test: {
    globalSetup: ["test/support/globalSetup.ts"],
    // Tests name the external tools they need as tags; a missing one skips them, except in CI (test/support/tools.ts).
    tags: await toolTags(),
    // The default output, then the skipped tests and why, and the honest counts for .ci/run.
    reporters: ["default", "./test/support/summaryReporter.ts"],
    // Each file gets its own database, so files run in parallel; most of the time is spent waiting on I/O and
    // child processes, so more workers than cores pays off.
    maxWorkers: 3,
    // Files share their worker's module graph (each still builds its own layers, server and database): loading
    // Effect and the app once per worker instead of once per file halves the suite's time on a 2-core machine.
    isolate: false,
    // Generous: a test only reaches it by hanging, and the whole suite on 2 loaded cores makes honest tests slow.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The tests of each file run in a random order (files keep theirs: the processes project runs last, one file at a
    // time), so a test that leans on another's data fails here rather than when someone runs it alone. The seed is
    // printed at the end of the run; `--sequence.seed=<seed>` replays that order (CONTRIBUTING.md).
    projects: [
      {
        extends: true,
        test: {
          name: "suite",
          include: ["test/**/*.test.ts"],
          exclude: processTimed,
          sequence: { groupOrder: 0, shuffle: { tests: true } }
        }
      },
      {
        extends: true,
        test: {
          name: "processes",
          include: processTimed,
          maxWorkers: 2,
          sequence: { groupOrder: 1, shuffle: { tests: true } }
        }
      }
    ]
  }
}))
