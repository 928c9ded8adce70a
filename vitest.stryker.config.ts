import { defineConfig } from 'vitest/config';

// The test set StrykerJS runs for each mutant (`npm run test:mutation`, stryker.config.mjs): the unit and
// integration tests of the security core (policy, audit, HTTP guards, console sign-in, lease, executor
// checks) — never e2e (real Xvfb and apps), not the tests that spawn the built CLI from dist/ (a mutant of
// src/ is not in dist/), and not the perception/OCR/macOS suites, which cover none of the mutated files
// and would only make each run slower.
// `STRYKER_TESTS=a.test.ts,b.test.ts npx stryker run --mutate …` narrows the set for a per-file run (the
// score is then a lower bound: only those tests may kill a mutant).
const narrowed = process.env.STRYKER_TESTS?.split(',').map((s) => s.trim()).filter(Boolean);

export default defineConfig({
  test: {
    include: narrowed?.length ? narrowed : [
      'tests/unit/audit*.test.ts',
      'tests/unit/guards*.test.ts',
      'tests/unit/lease.test.ts',
      'tests/unit/mcpToolActs.test.ts',
      'tests/unit/keys.test.ts',
      'tests/unit/policy*.test.ts',
      'tests/unit/governance*.test.ts',
      'tests/unit/cornerHalt.test.ts',
      'tests/unit/securityMutants.test.ts',
      'tests/unit/signInThrottle.test.ts',
      'tests/unit/consoleAuth*.test.ts',
      'tests/unit/approvals*.test.ts',
      'tests/unit/mcpServer.test.ts',
      'tests/unit/effects*.test.ts',
      'tests/unit/executor*.test.ts',
      'tests/unit/targets*.test.ts',
      'tests/integration/policy.test.ts',
      'tests/integration/console.test.ts',
      'tests/integration/auditRecords.test.ts',
      'tests/integration/hardening.test.ts',
      'tests/integration/app.test.ts',
      'tests/integration/mcpHttp.test.ts',
      'tests/integration/security-http.test.ts',
    ],
    exclude: ['**/node_modules/**'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
