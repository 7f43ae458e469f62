/** The typed values of the command line's options (parsed by `util.parseArgs`, checked here). */
import { UsageError } from './usage.js';

/**
 * `--NAME V`: a decimal integer from `min` to `max`, or `dflt` when the option is absent. The
 * one integer parser of every command line here (cli/, bench/, kernel-matrix/).
 */
export function intOption(name: string, v: string | undefined, dflt: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} ${v}: must be an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`}`);
  }
  return n;
}

/** fast-check's seeds are 32-bit integers: above this one a seed would not replay as given. */
const SEED_MAX = 0x7fff_ffff;

/** `--seed S` (0 to 2^31 - 1), or a fresh random seed (which the command prints). */
export function seedOption(v: string | undefined): number {
  // Drawn here, not with properties/run-check.ts's randomSeed(): every command imports this
  // module, and that one loads fast-check.
  return intOption('seed', v, Math.floor(Math.random() * SEED_MAX), 0, SEED_MAX);
}

/** `--timeout MS`: the per-request timeout for a SUT, default 5000 ms. */
export function parseTimeout(v: string | undefined): number {
  return intOption('timeout', v, 5000, 1);
}
