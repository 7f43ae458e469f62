/** The typed values of the command line's options (parsed by `util.parseArgs`, checked here). */
import { UsageError } from './usage.js';

/** `--NAME V`: an integer of at least `min`, or `dflt` when the option is absent. */
export function intOption(name: string, v: string | undefined, dflt: number, min = 0): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} ${v}: must be an integer >= ${min}`);
  return n;
}

/** `--seed S`, or a fresh random seed (which the command prints). */
export function seedOption(v: string | undefined): number {
  return intOption('seed', v, Math.floor(Math.random() * 0x7fff_ffff));
}

/** `--timeout MS`: the per-request timeout for a SUT, default 5000 ms. */
export function parseTimeout(v: string | undefined): number {
  return intOption('timeout', v, 5000, 1);
}
