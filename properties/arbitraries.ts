/**
 * Arbitraries for the stateful suite, biased to edges: 0, a page +-1, 2^64 - 1, the max gfn,
 * the user address limit, the slot-count limits, and ranges adjacent to, touching or
 * overlapping live slots (those are resolved at run time, see commands/common.ts). Gfns come
 * mostly from a space of 64 pages so that collisions are frequent.
 */
import fc from 'fast-check';
import { INTERNAL_SLOT_LAYOUT, PAGE_SHIFT, PAGE_SIZE, U64_MAX, type Profile } from '../model/index.js';

/**
 * Targeted runs: the commands of one part of the spec drawn four times as often. The dirty
 * ring's enables, writes, harvests, resets and logging toggles; the bitmap's writes, reads,
 * clears and logging toggles; or guest_memfd's files, slot creates and deletes and the requests
 * on its immutable slots.
 */
export type Focus = 'dirty-rings' | 'dirty-bitmaps' | 'guest-memfd';

/** Tuning knobs of the generated sequences. */
export interface ArbConfig {
  readonly profile: Profile;
  /** The largest BulkCreate. */
  readonly maxBulk: number;
  /** Whether BulkFill (every free user id of an address space, then the first id past the limit) is generated. */
  readonly fill: boolean;
  /** A part of the spec whose commands are drawn more often (targeted runs). */
  readonly focus?: Focus;
  /** The optional requests the target offers (spec/28); a command for one it lacks is not generated. Default: all. */
  readonly offers?: Offers;
}

/** Which optional requests (the 6.8+ memory API, writes, dirty rings) a target offers (properties/target.ts targetOffers()). */
export interface Offers {
  readonly createVm: boolean;
  readonly region2: boolean;
  readonly guestMemfd: boolean;
  readonly attributes: boolean;
  readonly capabilities: boolean;
  /** Guest writes (`write`). */
  readonly write: boolean;
  /** KVM_ENABLE_CAP together with the ring's harvest and KVM_RESET_DIRTY_RINGS (spec/25, "Dirty rings"). */
  readonly dirtyRings: boolean;
}

export const OFFERS_ALL: Offers = { createVm: true, region2: true, guestMemfd: true, attributes: true, capabilities: true, write: true, dirtyRings: true };

/** Where typical user memory lives; slots' hva ranges alias often because offsets are small. */
export const UADDR_BASE = 0x7f00_0000_0000n;
/** Where internal slots' vm_mmap() lands in this suite. */
export const INTERNAL_HVA_BASE = 0x7e00_0000_0000n;

const GFN_SPACE = 64n;

/** A position among live slots: `pick % live.length`. */
export const pickArb: fc.Arbitrary<number> = fc.nat({ max: 0xffff });

/** An address space that exists (lookups take only those). */
export function asIdArb(p: Profile): fc.Arbitrary<number> {
  return fc.nat({ max: p.addressSpaces - 1 });
}

/** An as_id for requests: mostly valid ones, sometimes the first invalid one or the largest. */
export function requestAsIdArb(p: Profile): fc.Arbitrary<number> {
  return fc.oneof({ arbitrary: asIdArb(p), weight: 8 }, { arbitrary: fc.constantFrom(p.addressSpaces, 0xffff), weight: 1 });
}

/** Edge gfns of a profile: kernel placements, the max gfn and its neighbours, 2^52 - 1. */
export function edgeGfns(p: Profile): bigint[] {
  const out = [
    0n,
    1n,
    INTERNAL_SLOT_LAYOUT.apicAccessPageGpa >> PAGE_SHIFT,
    INTERNAL_SLOT_LAYOUT.identityMapGpa >> PAGE_SHIFT,
    0xfeffdn,
    1n << 20n,
    // TDX's shared bit (MS-X86-02): below the max gfn, but a slot there fails on a TDX VM.
    1n << 35n,
    (1n << 52n) - 1n,
  ];
  if (p.maxGfn !== null) out.push(p.maxGfn - 1n, p.maxGfn, p.maxGfn + 1n);
  else out.push((1n << 40n) - 1n, 1n << 40n);
  return out;
}

/** A base gfn: mostly in a small space (collisions), sometimes an edge, sometimes anywhere. */
export function gfnArb(p: Profile): fc.Arbitrary<bigint> {
  return fc.oneof(
    { arbitrary: fc.bigInt(0n, GFN_SPACE - 1n), weight: 12 },
    { arbitrary: fc.constantFrom(...edgeGfns(p)), weight: 2 },
    { arbitrary: fc.bigInt(0n, (1n << 52n) - 1n), weight: 1 },
  );
}

/** A slot size in pages: mostly small, sometimes the KVM_MEM_MAX_NR_PAGES edges. */
export function npagesArb(p: Profile): fc.Arbitrary<bigint> {
  return fc.oneof(
    { arbitrary: fc.bigInt(1n, 4n), weight: 10 },
    { arbitrary: fc.bigInt(5n, 64n), weight: 3 },
    { arbitrary: fc.constantFrom(p.maxNrPages, p.maxNrPages + 1n), weight: 1 },
  );
}

/** A userspace_addr: mostly page-aligned near UADDR_BASE (so hva ranges alias), sometimes an edge. */
export function uaddrArb(p: Profile): fc.Arbitrary<bigint> {
  return fc.oneof(
    { arbitrary: fc.bigInt(0n, 255n).map((k) => UADDR_BASE + k * PAGE_SIZE), weight: 12 },
    { arbitrary: fc.constantFrom(0n, PAGE_SIZE, p.userAddrMax - PAGE_SIZE, p.userAddrMax, U64_MAX - PAGE_SIZE + 1n), weight: 1 },
    { arbitrary: fc.constantFrom(UADDR_BASE + 1n, UADDR_BASE + PAGE_SIZE - 1n, UADDR_BASE + PAGE_SIZE / 2n), weight: 1 },
  );
}

/** User flags: mostly valid combinations, sometimes one bit of the 32, sometimes anything. */
export function flagsArb(): fc.Arbitrary<number> {
  return fc.oneof(
    { arbitrary: fc.constantFrom(0, 1, 2, 3), weight: 12 },
    { arbitrary: fc.nat({ max: 31 }).map((b) => (1 << b) >>> 0), weight: 2 },
    { arbitrary: fc.nat({ max: 0xffff_ffff }), weight: 1 },
  );
}

/** A slot id: mostly small, sometimes at the id limits. */
export function slotIdArb(p: Profile): fc.Arbitrary<number> {
  return fc.oneof(
    { arbitrary: fc.nat({ max: 15 }), weight: 12 },
    {
      arbitrary: fc.constantFrom(p.userMemSlots - 1, p.userMemSlots, p.userMemSlots + 1, p.userMemSlots + 2, p.memSlotsNum - 1, p.memSlotsNum, 0xffff),
      weight: 2,
    },
    { arbitrary: fc.nat({ max: 0xffff }), weight: 1 },
  );
}

/** A u64 byte quantity biased to page edges: 0, page +-1, 2^64 - 1. */
export function u64EdgeArb(): fc.Arbitrary<bigint> {
  return fc.oneof(
    { arbitrary: fc.bigInt(0n, 16n).map((k) => k * PAGE_SIZE), weight: 6 },
    { arbitrary: fc.constantFrom(1n, PAGE_SIZE - 1n, PAGE_SIZE + 1n, U64_MAX, U64_MAX - PAGE_SIZE + 1n, 1n << 63n), weight: 2 },
    { arbitrary: fc.bigInt(0n, U64_MAX), weight: 1 },
  );
}

/** Where in or around a slot a gfn lies. */
export type SlotSpot = 'before' | 'base' | 'mid' | 'last' | 'end';
export const spotArb: fc.Arbitrary<SlotSpot> = fc.constantFrom('before', 'base', 'mid', 'last', 'end');

/** A gfn chosen around a live slot (pick) or absolutely (pick null, or no slot lives). */
export interface GfnSel {
  readonly pick: number | null;
  readonly spot: SlotSpot;
  readonly gfn: bigint;
}

export function gfnSelArb(p: Profile): fc.Arbitrary<GfnSel> {
  return fc.record({
    pick: fc.oneof({ arbitrary: pickArb, weight: 4 }, { arbitrary: fc.constant(null), weight: 1 }),
    spot: spotArb,
    gfn: gfnArb(p),
  });
}

export function gfnSelText(s: GfnSel): string {
  const abs = `0x${s.gfn.toString(16)}`;
  return s.pick === null ? abs : `${s.spot} of slot[${s.pick}] (or ${abs} with no slot)`;
}
