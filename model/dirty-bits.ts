/**
 * The contents of a dirty bitmap (spec/25-dirty-log.md, "The bits"): the set pages of a slot,
 * as disjoint runs `[start, end)` of page offsets in a persistent sorted map, so that an
 * all-ones bitmap of 2^31 pages (KVM_DIRTY_LOG_INITIALLY_SET) is one run, and a change copies
 * O(log n) nodes.
 */
import { emptyBigintMap, type SortedMap } from './internal/sorted-map.js';

/** Set pages as runs: start offset → end offset (exclusive). */
export type DirtyRuns = SortedMap<bigint, bigint>;

export function noRuns(): DirtyRuns {
  return emptyBigintMap<bigint>();
}

export function allRuns(npages: bigint): DirtyRuns {
  return npages === 0n ? noRuns() : noRuns().with(0n, npages);
}

export function isSet(runs: DirtyRuns, page: bigint): boolean {
  const r = runs.getPairOrNextLower(page);
  return r !== undefined && page < r[1];
}

/** The runs with page `page` set (merged with its neighbours). */
export function setPage(runs: DirtyRuns, page: bigint): DirtyRuns {
  if (isSet(runs, page)) return runs;
  let start = page;
  let end = page + 1n;
  let out = runs;
  const below = runs.getPairOrNextLower(page);
  if (below !== undefined && below[1] === page) {
    start = below[0];
    out = out.without(below[0]);
  }
  const above = runs.get(end);
  if (above !== undefined) {
    end = above;
    out = out.without(page + 1n);
  }
  return out.with(start, end, true);
}

/** The runs with `[s, e)` cleared. */
export function clearRange(runs: DirtyRuns, s: bigint, e: bigint): DirtyRuns {
  let out = runs;
  // Every run that meets [s, e): the one starting at or below s, and those starting inside.
  const first = runs.getPairOrNextLower(s);
  const hits: [bigint, bigint][] = [];
  if (first !== undefined && first[1] > s) hits.push(first);
  for (const pair of runs.getRange(s, e, false)) if (pair[0] !== first?.[0]) hits.push(pair);
  for (const [rs, re] of hits) {
    out = out.without(rs);
    if (rs < s) out = out.with(rs, s, true);
    if (re > e) out = out.with(e, re, true);
  }
  return out;
}

/**
 * The bitmap as the kernel lays it out for user space (`kvm_dirty_bitmap_bytes()`: long words,
 * bit i of byte k is page 8k + i on little-endian x86), as lowercase hex of its bytes with the
 * trailing zero bytes left out: "" for a clean bitmap.
 */
export function runsToHex(runs: DirtyRuns): string {
  const pairs = runs.getRange(0n, 1n << 64n, false);
  if (pairs.length === 0) return '';
  const last = pairs[pairs.length - 1]![1];
  if (last > MAX_EXCHANGED_BITS)
    throw new RangeError(`a dirty bitmap with page ${last - 1n} set is too large to exchange (the protocol carries at most ${MAX_EXCHANGED_BITS} bits)`);
  const bytes = new Uint8Array(Number((last + 7n) >> 3n));
  for (const [s, e] of pairs) {
    let p = s;
    for (; p < e && (p & 7n) !== 0n; p++) bytes[Number(p >> 3n)]! |= 1 << Number(p & 7n);
    // Whole bytes at once: an INITIALLY_SET bitmap is one long run.
    const full = (e - p) >> 3n;
    if (full > 0n) bytes.fill(0xff, Number(p >> 3n), Number((p >> 3n) + full));
    for (p += full << 3n; p < e; p++) bytes[Number(p >> 3n)]! |= 1 << Number(p & 7n);
  }
  return Buffer.from(bytes).toString('hex');
}

/** The most bits an answer carries (16 MiB of bitmap): spec/25. */
export const MAX_EXCHANGED_BITS = 1n << 27n;

/** The set bit offsets of a hex bitmap (the same layout), ascending. */
export function hexBits(hex: string): bigint[] {
  const out: bigint[] = [];
  for (let k = 0; k * 2 < hex.length; k++) {
    const byte = parseInt(hex.slice(2 * k, 2 * k + 2), 16);
    for (let i = 0; i < 8; i++) if ((byte >> i) & 1) out.push(BigInt(k * 8 + i));
  }
  return out;
}
