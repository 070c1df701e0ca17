import { defineConfig } from "vitest/config"

/** End-to-end tests against real external binaries (Prometheus): `npm run test:e2e`. */
export default defineConfig({
  test: {
    include: ["test/e2e/**/*.e2e.ts"],
    testTimeout: 90_000,
    hookTimeout: 60_000
  }
})
