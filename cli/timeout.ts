import { UsageError } from './usage.js';

/** `--timeout MS`: the per-request timeout for a SUT, default 5000 ms. */
export function parseTimeout(v: string | undefined): number {
  if (v === undefined) return 5000;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n <= 0) throw new UsageError(`--timeout ${v}: must be a positive number of milliseconds`);
  return n;
}
