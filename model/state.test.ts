/**
 * The model's sorted maps against the literal statements of the spec. Where the model uses a
 * neighbour search instead of "any slot such that", disjointness (MS-INV-02) is what makes the
 * two equal; here both are computed over random disjoint states and must agree, as must the
 * two maps of an address space, and an old state must stay as it was after every step.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  PAGE_SHIFT,
  PROFILES,
  addressSpace,
  createVm,
  gfnRangeMemslots,
  gfnToMemslot,
  gfnToMemslotApproxCandidates,
  hvaRangeMemslots,
  idToMemslot,
  lastGfn,
  memslots,
  setUserMemoryRegion,
  space,
  type Memslot,
  type VmState,
} from './index.js';
import { NOSMM, X86 } from '../test/rules/helpers.js';

const P = PROFILES['x86_64-nosmm']!;
const H = 0x7f00_0000_0000n;

/** Disjoint slots in gfns [0, 64): hole and length pairs laid out left to right, ids shuffled. */
const disjointSlots = fc
  .array(fc.record({ hole: fc.integer({ min: 0, max: 4 }), pages: fc.integer({ min: 1, max: 4 }), id: fc.integer({ min: 0, max: 15 }) }), { maxLength: 12 })
  .map((parts) => {
    const out: Memslot[] = [];
    const ids = new Set<number>();
    let gfn = 0n;
    for (const p of parts) {
      gfn += BigInt(p.hole);
      if (!ids.has(p.id)) {
        ids.add(p.id);
        out.push({
          asId: 0,
          id: p.id,
          baseGfn: gfn,
          npages: BigInt(p.pages),
          flags: 0,
          userspaceAddr: H + (BigInt(p.id) << 20n),
          dirtyBitmap: null,
          gmem: null,
        });
      }
      gfn += BigInt(p.pages);
    }
    return out;
  });

function vmOf(slots: readonly Memslot[]): VmState {
  const vm = createVm(P);
  return { ...vm, spaces: [addressSpace(0, 0n, slots)], nrMemslotPages: slots.reduce((n, s) => n + s.npages, 0n) };
}

const gfnArb = fc.bigInt({ min: 0n, max: 70n });

describe('the sorted maps give the answers of the literal definitions', () => {
  it('[MS-INV-01][MS-INV-02] both maps of an address space hold the same slots, by gfn and by id', () => {
    fc.assert(
      fc.property(disjointSlots, (slots) => {
        const sp = space(vmOf(slots), 0);
        expect(sp.byGfn.valuesArray()).toEqual([...slots].sort((a, b) => (a.baseGfn < b.baseGfn ? -1 : 1)));
        expect(sp.byId.valuesArray()).toEqual([...slots].sort((a, b) => a.id - b.id));
      }),
    );
  });

  it('[MS-LKP-01][MS-LKP-02][MS-LKP-03] id, gfn and approx lookups equal scans of every slot', () => {
    fc.assert(
      fc.property(disjointSlots, gfnArb, fc.integer({ min: 0, max: 16 }), (slots, gfn, id) => {
        const vm = vmOf(slots);
        expect(idToMemslot(vm, 0, id)).toBe(slots.find((s) => s.id === id) ?? null);
        const hit = slots.find((s) => s.baseGfn <= gfn && gfn < s.baseGfn + s.npages) ?? null;
        expect(gfnToMemslot(vm, 0, gfn)).toBe(hit);
        const sorted = memslots(vm, 0);
        const below = sorted.filter((s) => s.baseGfn < gfn).at(-1);
        const above = sorted.find((s) => s.baseGfn > gfn);
        const want = hit !== null ? [hit] : [below, above].filter((s) => s !== undefined);
        expect(gfnToMemslotApproxCandidates(vm, 0, gfn)).toEqual(want);
      }),
    );
  });

  it('[MS-LKP-04][MS-LKP-05] gfn-range and hva-range walks equal filters over every slot, empty and inverted ranges included', () => {
    fc.assert(
      fc.property(disjointSlots, gfnArb, gfnArb, (slots, start, end) => {
        const vm = vmOf(slots);
        const sorted = memslots(vm, 0);
        expect(gfnRangeMemslots(vm, 0, start, end)).toEqual(sorted.filter((s) => s.baseGfn < end && start < s.baseGfn + s.npages));
        const [hs, he] = [H + (start << 16n), H + (end << 16n)];
        const ids = hvaRangeMemslots(vm, hs, he).map((x) => x.id);
        const hitIds = sorted.filter((s) => s.userspaceAddr < he && hs < s.userspaceAddr + (s.npages << PAGE_SHIFT)).map((s) => s.id);
        expect(ids).toEqual(he <= hs ? [] : hitIds.sort((a, b) => a - b));
      }),
    );
  });

  it('[MS-OVL-01] a CREATE or MOVE fails with EEXIST exactly when some other slot of the address space overlaps it', () => {
    fc.assert(
      fc.property(disjointSlots, gfnArb, fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 16 }), (slots, gfn, pages, id) => {
        const vm = vmOf(slots);
        const old = slots.find((s) => s.id === id);
        const npages = old?.npages ?? BigInt(pages);
        const uaddr = old?.userspaceAddr ?? H;
        const r = setUserMemoryRegion(vm, { slot: id, flags: 0, guestPhysAddr: gfn << PAGE_SHIFT, memorySize: npages << PAGE_SHIFT, userspaceAddr: uaddr });
        const overlaps = slots.some((s) => s.id !== id && gfn < s.baseGfn + s.npages && s.baseGfn < gfn + npages);
        const sameRange = old !== undefined && old.baseGfn === gfn;
        if (!sameRange) expect(r.result.ok === false && r.result.errno === 'EEXIST').toBe(overlaps);
      }),
    );
  });

  it('[MS-CRT-02][MS-DEL-02][MS-MOV-01] a step leaves the state it started from as it was', () => {
    fc.assert(
      fc.property(
        disjointSlots,
        fc.array(fc.tuple(fc.integer({ min: 0, max: 15 }), gfnArb, fc.integer({ min: 0, max: 4 })), { maxLength: 20 }),
        (slots, reqs) => {
          let vm = vmOf(slots);
          for (const [id, gfn, pages] of reqs) {
            const before = memslots(vm, 0);
            const byId = space(vm, 0).byId.valuesArray();
            const old = space(vm, 0).byId.get(id);
            const uaddr = old?.userspaceAddr ?? H + (BigInt(id) << 20n);
            const npages = pages === 0 ? 0n : (old?.npages ?? BigInt(pages));
            const next = setUserMemoryRegion(vm, {
              slot: id,
              flags: 0,
              guestPhysAddr: gfn << PAGE_SHIFT,
              memorySize: npages << PAGE_SHIFT,
              userspaceAddr: uaddr,
            });
            expect(memslots(vm, 0)).toEqual(before);
            expect(space(vm, 0).byId.valuesArray()).toEqual(byId);
            for (const p of next.published) expect(memslots(p, 0).length).toBe(space(p, 0).byId.size);
            vm = next.state;
          }
        },
      ),
    );
  });
});

describe('space() and lastGfn()', () => {
  it('an address space the profile lacks is a caller error naming it and the profile', () => {
    expect(() => space(createVm(NOSMM), 1)).toThrow(new RangeError('address space 1 does not exist in profile x86_64-nosmm'));
    expect(space(createVm(X86), 1).asId).toBe(1);
  });

  it('lastGfn is the last gfn a slot covers, inclusive', () => {
    expect(lastGfn({ baseGfn: 4n, npages: 2n })).toBe(5n);
    expect(lastGfn({ baseGfn: 0n, npages: 1n })).toBe(0n);
  });
});
