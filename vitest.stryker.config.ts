import { defineConfig } from 'vitest/config';

// The test set StrykerJS runs for each mutant (`npm run test:mutation`, stryker.config.mjs): the unit and
// integration tests (fake platform, in process) — never e2e (real Xvfb and apps) — and not the ones that
// spawn the built CLI from dist/ (a mutant of src/ is not in dist/, so they cannot see it), nor the load
// soak and the property tests (minutes each; their checks are covered by faster tests of the same code).
export default defineConfig({
  test: {
    include: ['tests/unit/**/*.test.ts', 'tests/integration/**/*.test.ts'],
    exclude: ['tests/integration/mcpStdio.test.ts', 'tests/integration/consoleCli.test.ts', 'tests/integration/hardening-load.test.ts', '**/node_modules/**'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
