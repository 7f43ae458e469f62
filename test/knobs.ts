/**
 * The test suite's knobs: environment variables, all optional, documented in the README
 * ("Testing deeper"). `npm test` sets none of them.
 *
 * - `MEMSLOT_DEPTH=deep`: every property test runs 10x its runs, the legacy array also fills
 *   32764 slots, and the Python SUT replays every ground-truth trace whole.
 * - `MEMSLOT_RUNS=N`: exactly N runs for each property test (wins over the depth).
 * - `MEMSLOT_SEED=S`: the seed of every randomized test (each names the seed it used).
 * - `MEMSLOT_VERBOSE=1`: print each planted bug's counterexample as it is caught.
 *
 * `MEMSLOT_MUTATION=1` is not a knob: the Stryker setup sets it (test/mutation/mode.ts).
 */
const env = process.env;

function intKnob(name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new Error(`${name}=${v}: must be a non-negative integer`);
  return Number(v);
}

function depth(): 'default' | 'deep' {
  const v = env['MEMSLOT_DEPTH'];
  if (v === undefined || v === '' || v === 'default') return 'default';
  if (v === 'deep') return 'deep';
  throw new Error(`MEMSLOT_DEPTH=${v}: must be "deep" or "default"`);
}

/** `MEMSLOT_DEPTH=deep`. */
export const DEEP = depth() === 'deep';

/** How many runs a property test makes whose default is `n`. */
export function runs(n: number): number {
  return intKnob('MEMSLOT_RUNS') ?? (DEEP ? n * 10 : n);
}

/** The seed of a randomized test: `MEMSLOT_SEED`, else its own. */
export function seed(own: number | (() => number)): number {
  return intKnob('MEMSLOT_SEED') ?? (typeof own === 'number' ? own : own());
}

/** `MEMSLOT_VERBOSE=1`. */
export const VERBOSE = env['MEMSLOT_VERBOSE'] === '1';
