import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/globalSetup.ts"],
    // Each file gets its own database, so files run in parallel; most of the time is spent waiting on I/O and
    // child processes, so more workers than cores pays off.
    maxWorkers: 3,
    testTimeout: 30_000,
    hookTimeout: 60_000
  }
})
