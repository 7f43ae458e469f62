/**
 * The vitest configuration used only under StrykerJS (stryker.config.mjs, `npm run mutate`).
 * `npm test` uses vitest.config.ts and never reads this file.
 *
 * - include: the tests that check model/ and impl/ (rule examples, the unit tests beside their
 *   subject, ground truth, the differential, stateful and concurrency suites, and
 *   test/mutation/equivalents.test.ts). Left out: planted-bugs.test.ts (it
 *   checks that failures shrink to at most 6 steps, which endOnFailure turns off, and it tests
 *   the suite rather than the code), the CLI, SUT, bench, pack and kernel tests (processes,
 *   I/O, nothing the files above do not already check).
 * - setupFiles pins fast-check (test/mutation/stryker.setup.ts).
 * - sequence.sequencer runs the cheap example files first and the stateful suite last: with
 *   Stryker's bail, a mutant an example kills never pays for the property runs.
 */
import type { TestSpecification } from 'vitest/node';
import { BaseSequencer } from 'vitest/node';
import { defineConfig } from 'vitest/config';

/** Files in the order a mutant run should try them; unlisted files go last. */
const ORDER = [
  'test/mutation/',
  'test/rules/',
  'model/',
  'impl/internal/',
  'impl/scalable/',
  'impl/legacy/',
  'impl/',
  'test/ground-truth/',
  'properties/impl-vs-model.test.ts',
  'properties/ring-differential.test.ts',
  'properties/concurrency.test.ts',
  'properties/conformance.test.ts',
];

function rank(moduleId: string): number {
  const i = ORDER.findIndex((p) => moduleId.includes(`/${p}`));
  return i < 0 ? ORDER.length : i;
}

class CheapFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    return [...files].sort((a, b) => rank(a.moduleId) - rank(b.moduleId) || a.moduleId.localeCompare(b.moduleId));
  }
}

export default defineConfig({
  test: {
    include: [
      'test/mutation/**/*.test.ts',
      'test/rules/**/*.test.ts',
      'model/**/*.test.ts',
      'test/ground-truth/**/*.test.ts',
      'impl/**/*.test.ts',
      'properties/impl-vs-model.test.ts',
      'properties/ring-differential.test.ts',
      'properties/conformance.test.ts',
      'properties/concurrency.test.ts',
    ],
    exclude: ['node_modules/**', 'dist/**'],
    setupFiles: ['test/mutation/stryker.setup.ts'],
    sequence: { sequencer: CheapFirstSequencer },
    // Load CommonJS packages (sorted-btree) as Node does: the default export is module.exports.
    deps: { interopDefault: false },
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
