/**
 * model/invariants.ts names what is wrong (found by mutation testing, docs/mutation.md): each
 * broken invariant is reported with its address space, ids and numbers.
 */
import { describe, expect, it } from 'vitest';
import { InvariantError, KVM_MEMSLOT_INVALID, checkInvariants, type ObservableState } from './index.js';
import { NOSMM, X86, memslot } from '../test/rules/helpers.js';

describe('invariant violations say what is wrong', () => {
  const slot = memslot(0, 1, 4n, 2n, 0x1000n);
  const one = (slots: ObservableState['spaces'][number]['slots'], generation = 0n, pages?: bigint): ObservableState => ({
    spaces: [{ asId: 0, generation, slots }],
    nrMemslotPages: pages ?? slots.reduce((n, s) => n + s.npages, 0n),
  });
  const broken = (now: ObservableState, before?: ObservableState): InvariantError => {
    try {
      checkInvariants(NOSMM, now, before);
    } catch (e) {
      if (e instanceof InvariantError) return e;
      throw e;
    }
    throw new Error('no invariant broken');
  };

  it('[MS-INV-01][MS-INV-02][MS-INV-03] duplicate ids, overlaps and empty slots are named with their address space and ids', () => {
    expect(broken(one([slot, { ...slot, baseGfn: 9n }])).detail).toBe('as 0: id 1 twice');
    expect(broken(one([slot, { ...slot, id: 2, baseGfn: 5n }])).detail).toBe('as 0: slot 2 overlaps slot 1 or is out of gfn order');
    expect(broken(one([{ ...slot, npages: 0n }])).detail).toBe('as 0: slot 1 has 0 pages');
  });

  it('[MS-INV-06][MS-INV-07] an INVALID slot and a bitmap without dirty logging are named', () => {
    expect(broken(one([{ ...slot, flags: KVM_MEMSLOT_INVALID }])).detail).toBe('as 0: slot 1 is INVALID');
    expect(broken(one([{ ...slot, dirtyBitmap: 3 }])).detail).toBe('as 0: slot 1 dirty bitmap 3 with flags 0');
  });

  it('[MS-INV-04][MS-INV-05] generations and the page count are named with both numbers', () => {
    const x86 = (generation: bigint): ObservableState => ({
      spaces: [
        { asId: 0, generation, slots: [] },
        { asId: 1, generation: 1n, slots: [] },
      ],
      nrMemslotPages: 0n,
    });
    let e: unknown;
    try {
      checkInvariants(X86, x86(3n));
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(InvariantError);
    expect((e as InvariantError).detail).toBe('as 0: generation 3 is not 0 mod 2');
    expect(broken(one([], 2n), one([], 4n)).detail).toBe('as 0: generation went back from 4 to 2');
    expect(broken(one([slot], 0n, 3n)).detail).toBe('nr_memslot_pages 3, slots sum 2');
  });
});
