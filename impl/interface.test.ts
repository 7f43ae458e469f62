/**
 * What both implementations of the MemslotImpl interface (interface.ts) share beyond the
 * spec's answers: their names, the caller errors they raise (RangeError, the kernel's WARN for a
 * bad argument) and the page-count WARN of a DELETE (InvariantError). No request sequence
 * reaches these; mutation testing reported them NoCoverage (docs/mutation.md).
 */
import { describe, expect, it } from 'vitest';
import { InvariantError } from '../model/types.js';
import { NOSMM, PAGE, X86, del } from '../test/rules/helpers.js';
import { IMPLEMENTATIONS, createLegacyImpl, createScalableImpl, type MemslotImpl } from './index.js';
import { threeSlots } from './three-slots.fixture.js';

describe('both implementations', () => {
  const impls = { legacy: createLegacyImpl, scalable: createScalableImpl };

  it('each implementation names itself as IMPLEMENTATIONS lists it (counterexamples print the name)', () => {
    for (const [name, make] of Object.entries(IMPLEMENTATIONS)) expect(make(NOSMM).name).toBe(name);
    expect(createLegacyImpl(NOSMM).name).toBe('legacy');
    expect(createScalableImpl(NOSMM).name).toBe('scalable');
  });

  it('every lookup by address space rejects one the profile lacks (RangeError), in both implementations', () => {
    for (const [name, make] of Object.entries(impls)) {
      const impl = threeSlots(make);
      for (const asId of [1, 2, -1, 0.5]) {
        const msg = `address space ${asId} does not exist in profile x86_64-nosmm`;
        const calls: [string, () => unknown][] = [
          ['idToMemslot', () => impl.idToMemslot(asId, 0)],
          ['gfnToMemslot', () => impl.gfnToMemslot(asId, 0x10n)],
          ['gfnToMemslotApprox', () => impl.gfnToMemslotApprox(asId, 0x10n)],
          ['gfnRangeMemslots', () => impl.gfnRangeMemslots(asId, 0n, 0x100n)],
          ['isVisibleGfn', () => impl.isVisibleGfn(asId, 0x10n)],
          ['gfnToHva', () => impl.gfnToHva(asId, 0x10n, false)],
          ['slots', () => impl.slots(asId)],
          ['generation', () => impl.generation(asId)],
        ];
        for (const [what, call] of calls) {
          expect(call, `${name} ${what}(${asId})`).toThrow(RangeError);
          expect(call, `${name} ${what}(${asId})`).toThrow(msg);
        }
      }
      expect(impl.idToMemslot(0, 1)?.id, name).toBe(1);
      expect(impl.slots(0), name).toHaveLength(3);
      // Under the two-address-space profile, 1 is fine and 2 is not.
      const smm = make(X86);
      expect(smm.idToMemslot(1, 0), name).toBeNull();
      expect(() => smm.generation(2), name).toThrow(new RangeError('address space 2 does not exist in profile x86_64'));
      expect(() => smm.generation(2), name).toThrow(RangeError);
    }
  });

  it('an internal slot request with a user id is a caller error (RangeError), in both implementations', () => {
    for (const [name, make] of Object.entries(impls)) {
      for (const profile of [X86, NOSMM]) {
        for (const id of [3, 0, profile.userMemSlots - 1]) {
          const impl = make(profile);
          const msg = `internal slot id ${id} is a user id (WARN in kvm_set_internal_memslot)`;
          const call = (): unknown => impl.setInternalMemslot(id, 0xfee0_0000n, PAGE, 0x300_0000n);
          expect(call, `${name} ${profile.name} ${id}`).toThrow(RangeError);
          expect(call, `${name} ${profile.name} ${id}`).toThrow(msg);
          expect(impl.slots(0), name).toEqual([]);
        }
        // Healthy: the first internal id.
        const impl = make(profile);
        const id = profile.userMemSlots;
        expect(impl.setInternalMemslot(id, 0xfee0_0000n, PAGE, 0x300_0000n), `${name} ${profile.name}`).toEqual({
          ok: true,
          change: 'CREATE',
        });
      }
    }
  });
});

describe.each([
  ['legacy', createLegacyImpl],
  ['scalable', createScalableImpl],
] as const)('%s page accounting', (_name, make) => {
  function setup(): { impl: MemslotImpl; inner: { nrPages: bigint } } {
    const impl = threeSlots(make);
    return { impl, inner: impl as unknown as { nrPages: bigint } };
  }

  it('[MS-INV-05] a DELETE of more pages than nr_memslot_pages counts', () => {
    const { impl, inner } = setup();
    expect(impl.nrMemslotPages()).toBe(3n);
    inner.nrPages = 0n;
    expect(() => impl.setUserMemoryRegion(del(1))).toThrow(new InvariantError('MS-INV-05', 'nr_memslot_pages 0 < 1'));
    const b = setup();
    b.inner.nrPages = 0n;
    expect(() => b.impl.setUserMemoryRegion(del(2))).toThrow(InvariantError);
    // Healthy: exactly enough pages.
    const ok = setup();
    ok.inner.nrPages = 1n;
    expect(ok.impl.setUserMemoryRegion(del(3))).toEqual({ ok: true, change: 'DELETE' });
    expect(ok.impl.nrMemslotPages()).toBe(0n);
  });
});
