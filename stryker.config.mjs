// Mutation testing of the security core (issue 13, "Tests that can fail"): `npm run test:mutation`.
// Not part of CI (it takes tens of minutes on a 2-core machine). Scores and the accepted survivors are in
// docs/security.md ("Mutation testing"). Narrow a run with `npx stryker run --mutate src/policy/audit.ts`
// (or a line range, `src/actuation/executor.ts:193-351`) and the tests with `STRYKER_TESTS=a.test.ts,b.test.ts`
// (vitest.stryker.config.ts).
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'vitest',
  plugins: ['@stryker-mutator/vitest-runner'],
  // Only the unit + integration tests (vitest.stryker.config.ts), never e2e.
  vitest: { configFile: 'vitest.stryker.config.ts', related: false },
  mutate: [
    'src/policy/**/*.ts',
    'src/http/guards.ts',
    'src/http/consoleAuth.ts',
    'src/http/lease.ts',
    'src/actuation/executor.ts',
  ],
  coverageAnalysis: 'perTest',
  // One test runner: the 2-core machines are shared by everyone working on them.
  concurrency: 1,
  timeoutMS: 15000,
  timeoutFactor: 2,
  ignoreStatic: true,
  reporters: ['clear-text', 'progress', 'json', 'html'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  ignorePatterns: ['dist', 'reports', 'native/macos/.build', '.scratch*', 'bench/**/results*.json', '/tmp', '.stryker-tmp*'],
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
  thresholds: { high: 90, low: 80, break: null },
};
