import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Builds dist/ once: spawned gateways run the compiled entry, as `npm start` does.
    globalSetup: ["test/support/build.ts"],
    testTimeout: 20_000,
    hookTimeout: 30_000
  }
})
