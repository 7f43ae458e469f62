/**
 * Gfns as JS numbers, for the inside of an implementation only. Every interface keeps
 * bigint addresses and sizes; a structure that compares gfns millions of times may keep
 * them as float64 instead, which is exact here:
 *
 *   a gfn is `guest_phys_addr >> PAGE_SHIFT` of a u64 address, so it is below 2^52, and a
 *   slot's end `base_gfn + npages` is at most 2^52 because the guest range may not wrap past
 *   2^64 ([MS-VAL-10]). Every integer up to 2^53 (Number.MAX_SAFE_INTEGER + 1) is a float64
 *   exactly, so a slot's keys convert without rounding and compare as the bigints do.
 *
 * impl/internal/gfn-num.test.ts pins the bound (the top page of the gfn space round-trips).
 */
import { InvariantError, hex, type Gfn } from '../../model/types.js';

/** A gfn (or a slot's end gfn) held as an exact float64 integer, at most 2^53 - 1. */
export type GfnNum = number & { readonly __gfnNum: true };

/** The largest gfn a GfnNum holds exactly (Number.MAX_SAFE_INTEGER). */
export const GFN_NUM_MAX = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * The exact number for a validated gfn (a slot's base or end). Throws InvariantError
 * ([MS-INV-02]: the keys of the gfn tree) for a value outside 0 .. 2^53 - 1, which no
 * validated slot has.
 */
export function toGfnNum(gfn: Gfn): GfnNum {
  if (gfn < 0n || gfn > GFN_NUM_MAX) throw new InvariantError('MS-INV-02', `gfn ${hex(gfn)} does not fit a GfnNum`);
  return Number(gfn) as GfnNum;
}

/** The bigint of a GfnNum. */
export function fromGfnNum(g: GfnNum): Gfn {
  return BigInt(g);
}

/**
 * A lookup's gfn as a search key, for comparing with GfnNum keys. Any bigint is accepted (a
 * caller may ask about 2^64 - 1): below 2^53 the key is exact; above, Number() rounds, but
 * stays above every GfnNum, so every `<`, `<=` against a key gives the bigint's answer
 * (rounding is monotone, and a key is a float64 exactly).
 */
export function gfnSearchKey(gfn: Gfn): number {
  return Number(gfn);
}
