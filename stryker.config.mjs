// @ts-check
/**
 * StrykerJS mutation testing of model/ and impl/ (`npm run mutate`; docs/mutation.md).
 * Not part of `npm test` or `.ci/run`.
 *
 * MUTATE_SCOPE=model or MUTATE_SCOPE=impl (`npm run mutate:model`, `npm run mutate:impl`)
 * mutates one folder, with its own incremental file and report, so that one folder's run
 * never drops the other's results.
 */
const SCOPES = { all: ['model', 'impl'], model: ['model'], impl: ['impl'] };
const scope = process.env.MUTATE_SCOPE ?? 'all';
const folders = SCOPES[scope];
if (folders === undefined) throw new Error(`MUTATE_SCOPE=${scope}: expected one of ${Object.keys(SCOPES).join(', ')}`);

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
const config = {
  testRunner: 'vitest',
  // The vitest runner always measures coverage per test; `related` runs only the test files
  // that import the mutated file.
  vitest: { configFile: 'vitest.stryker.config.ts', related: true },
  coverageAnalysis: 'perTest',
  mutate: [
    ...folders.map((f) => `${f}/**/*.ts`),
    '!**/*.test.ts',
    // Test-only builders and planted bugs (tsconfig.build.json leaves them out of the package too).
    '!**/*.fixture.ts',
    // Re-exports and type declarations only: nothing to mutate.
    '!model/index.ts',
    '!impl/index.ts',
    '!impl/interface.ts',
  ],
  // Mutants that only run while a module loads (constant tables) would each need a fresh
  // environment and the whole suite: skipped, reported as Ignored.
  ignoreStatic: true,
  // Results kept in reports/ (git-ignored); an everyday run only re-tests changed code and tests.
  incremental: true,
  incrementalFile: `reports/stryker-incremental-${scope}.json`,
  // Two cores, shared: one vitest worker per Stryker worker.
  concurrency: 2,
  timeoutMS: 10_000,
  timeoutFactor: 1.5,
  // event-recorder writes each mutant's result as it is known (reports/mutation/events-*/),
  // so survivors can be read while a long run goes on.
  reporters: ['clear-text', 'progress', 'html', 'json', 'event-recorder'],
  eventReporter: { baseDir: `reports/mutation/events-${scope}` },
  htmlReporter: { fileName: `reports/mutation/${scope}.html` },
  jsonReporter: { fileName: `reports/mutation/${scope}.json` },
  clearTextReporter: { allowColor: false, logTests: false, maxTestsToLog: 0 },
  thresholds: { high: 90, low: 80, break: null },
  // Not needed by the tests that run under Stryker: keep the sandbox copy small.
  ignorePatterns: [
    'dist',
    'out',
    '.cache',
    'memslot-oracle-out',
    'bench/results',
    '/kernel-matrix',
    '/test/kernel-matrix',
    // The kernels' recordings stay out, except the dirty ones test/ground-truth/impl-dirty.test.ts sends to both implementations.
    'test/ground-truth/kernel-matrix/*',
    '!test/ground-truth/kernel-matrix/*.dirty.jsonl.gz',
    '!test/ground-truth/kernel-matrix/*.dirty-random.jsonl.gz',
  ],
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
};

export default config;
