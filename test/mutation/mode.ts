/**
 * Whether the tests run under StrykerJS (`npm run mutate`; set by test/mutation/stryker.setup.ts).
 * Under mutation every covering test runs once per surviving mutant on instrumented code (about
 * 15 times slower), so the costliest tests trim what only repeats other tests' work: see
 * docs/mutation.md, "What runs under mutation". `npm test` never sets it.
 */
export const UNDER_MUTATION = process.env['MEMSLOT_MUTATION'] === '1';
