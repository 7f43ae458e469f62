/** The typed values of the command line's options (parsed by `util.parseArgs`, checked here). */
import { randomSeed } from '../properties/run-check.js';
import { UsageError } from './usage.js';

/** `--NAME V`: an integer of at least `min`, or `dflt` when the option is absent. */
export function intOption(name: string, v: string | undefined, dflt: number, min = 0): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} ${v}: must be an integer >= ${min}`);
  return n;
}

/** fast-check's seeds are 32-bit integers: above this one a seed would not replay as given. */
const SEED_MAX = 0x7fff_ffff;

/** `--seed S` (0 to 2^31 - 1), or a fresh random seed (which the command prints). */
export function seedOption(v: string | undefined): number {
  const seed = intOption('seed', v, randomSeed());
  if (seed > SEED_MAX) throw new UsageError(`--seed ${v}: must be at most ${SEED_MAX}`);
  return seed;
}

/** `--timeout MS`: the per-request timeout for a SUT, default 5000 ms. */
export function parseTimeout(v: string | undefined): number {
  return intOption('timeout', v, 5000, 1);
}
