import { defineConfig } from "vitest/config"
import { toolTags } from "./test/support/tools.ts"

/**
 * End-to-end tests against real external binaries (Prometheus): `npm run test:e2e`. Same global setup as the suite:
 * each file clones the run's migrated template database (or runs on embedded PGlite), never the server's own.
 */
export default defineConfig(async () => ({
  test: {
    include: ["test/e2e/**/*.e2e.ts"],
    globalSetup: ["test/support/globalSetup.ts"],
    tags: await toolTags(),
    reporters: ["default", "./test/support/summaryReporter.ts"],
    testTimeout: 90_000,
    hookTimeout: 60_000
  }
}))
