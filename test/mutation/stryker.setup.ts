/**
 * Setup file of vitest.stryker.config.ts, used only under StrykerJS (`npm run mutate`), never by
 * `npm test`. Under mutation every run must be deterministic and a kill must be cheap:
 *
 * - MEMSLOT_SEED pins the seed of the stateful suite (properties/conformance.test.ts reads it
 *   when the file is imported, which is after this file ran). MEMSLOT_DEPTH is deliberately left
 *   unset: deep mode (all 32764 slots) is far too slow per mutant.
 * - MEMSLOT_MUTATION trims the costliest tests (test/mutation/mode.ts).
 * - fc.configureGlobal pins the seed and a modest numRuns for every other property that does not
 *   set them itself, and endOnFailure for all: a kill needs no shrinking.
 * - interruptAfterTimeLimit stops a property that a mutant made slow (the run then passes with
 *   fewer runs: a slow mutant survives rather than costing a Stryker timeout).
 */
import fc from 'fast-check';

export const MUTATION_SEED = 20_261_126;

process.env['MEMSLOT_SEED'] ??= String(MUTATION_SEED);
process.env['MEMSLOT_MUTATION'] = '1';

fc.configureGlobal({
  seed: MUTATION_SEED,
  numRuns: 50,
  endOnFailure: true,
  interruptAfterTimeLimit: 20_000,
});
