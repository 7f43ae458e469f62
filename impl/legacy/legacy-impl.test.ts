/**
 * The implementations' defensive checks (the kernel's WARN_ONs: InvariantError, or RangeError
 * for a caller's bad argument) fire when their precondition is broken, with their exact
 * message. No suite reaches them on healthy input, so mutation testing reported every one as
 * NoCoverage: deleting a check or emptying its message survived. Each one is reached here by
 * calling the (often private) method directly with a bad argument, or on a structure broken
 * by hand; where cheap, the same call on healthy input is shown not to throw.
 */
import { describe, expect, it } from 'vitest';
import { InvariantError, KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS, type Memslot } from '../../model/types.js';
import { NOSMM, PAGE, X86, del, region } from '../../test/rules/helpers.js';
import { createLegacyImpl, createScalableImpl, type MemslotImpl } from '../index.js';
import { checkAsId, generationInProgress, makeMemslot } from '../internal/memslot.js';
import type { WriterSteps } from '../interface.js';
import type { LegacyKvmMemslots } from './legacy-impl.js';
import type { KvmMemslots } from '../scalable/scalable-impl.js';

type ChangeKind = 'CREATE' | 'DELETE' | 'MOVE' | 'FLAGS_ONLY';

/** Three slots at gfn 0x10, 0x20, 0x30 (ids 1..3), one page each. */
function threeSlots(make: (p: typeof NOSMM) => MemslotImpl, profile = NOSMM): MemslotImpl {
  const impl = make(profile);
  for (const id of [1, 2, 3]) {
    const r = impl.setUserMemoryRegion(region(id, BigInt(id) * 0x10n * PAGE, PAGE, 0x100_0000n + BigInt(id) * PAGE));
    expect(r.ok).toBe(true);
  }
  return impl;
}

/** A slot of address space 0 that no set holds. */
function slot(id: number, baseGfn: bigint, npages = 1n): Memslot {
  return makeMemslot({ asId: 0, id, baseGfn, npages, flags: 0, userspaceAddr: 0x200_0000n + BigInt(id) * PAGE }, null);
}

// ---------------------------------------------------------------------------------------------
// Legacy

interface LegacyInternals {
  memslots: LegacyKvmMemslots[];
  nrPages: bigint;
  setMemslot(asId: number, old: Memslot | null, neu: Memslot, change: ChangeKind): WriterSteps<void>;
  activeSet(asId: number): LegacyKvmMemslots;
}

describe('legacy defensive checks', () => {
  function setup(): { impl: MemslotImpl; inner: LegacyInternals; set: LegacyKvmMemslots } {
    const impl = threeSlots(createLegacyImpl);
    const inner = impl as unknown as LegacyInternals;
    return { impl, inner, set: inner.memslots[0]! };
  }
  /** A private copy of the installed set, to break without touching the installed one. */
  function scratch(): LegacyKvmMemslots {
    return setup().set.dup('MOVE');
  }

  it('[MS-INV-01] id_to_memslot() of an id whose id_to_index points at another slot', () => {
    const { impl, set } = setup();
    expect(set.idToMemslot(1)?.id).toBe(1);
    // Descending by gfn: index 0 holds slot 3, index 1 slot 2, index 2 slot 1.
    expect(set.idToIndex[2]).toBe(1);
    set.idToIndex[1] = set.idToIndex[2]!;
    const err = new InvariantError('MS-INV-01', 'id_to_index[1] = 1 holds slot 2');
    expect(() => set.idToMemslot(1)).toThrow(err);
    expect(() => set.idToMemslot(1)).toThrow(InvariantError);
    expect(() => impl.idToMemslot(0, 1)).toThrow('[MS-INV-01] invariant broken: id_to_index[1] = 1 holds slot 2');
    expect(set.idToMemslot(2)?.id).toBe(2);
  });

  it('[MS-INV-01] setting INVALID on a slot that is not in the array', () => {
    const set = scratch();
    expect(() => set.setInvalid(4, true)).toThrow(new InvariantError('MS-INV-01', 'slot 4 is not in the array'));
    expect(() => set.setInvalid(4, false)).toThrow(InvariantError);
    expect(() => set.setInvalid(4, false)).toThrow('[MS-INV-01] invariant broken: slot 4 is not in the array');
    expect(() => set.setInvalid(1, true)).not.toThrow();
    expect(() => set.setInvalid(1, false)).not.toThrow();
  });

  it('[MS-INV-01] update_memslots() DELETE of a slot that is not in the array', () => {
    const set = scratch();
    const msg = '[MS-INV-01] invariant broken: delete of slot 4, which is not in the array';
    expect(() => set.updateMemslots(slot(4, 0x40n), 'DELETE')).toThrow(InvariantError);
    expect(() => set.updateMemslots(slot(4, 0x40n), 'DELETE')).toThrow(msg);
    expect(set.usedSlots).toBe(3);
    expect(() => set.updateMemslots(set.idToMemslot(1)!, 'DELETE')).not.toThrow();
    expect(set.usedSlots).toBe(2);
  });

  it('[MS-INV-01] update_memslots() MOVE or FLAGS_ONLY of a slot that is not in the array', () => {
    for (const change of ['MOVE', 'FLAGS_ONLY'] as const) {
      const set = scratch();
      const err = new InvariantError('MS-INV-01', 'move of slot 4, which is not in the array');
      expect(() => set.updateMemslots(slot(4, 0x40n), change), change).toThrow(err);
      expect(() => set.updateMemslots(slot(4, 0x40n), change), change).toThrow(InvariantError);
    }
    // The other half of the condition: the id is mapped, but the array has no used slot.
    const set = scratch();
    set.usedSlots = 0;
    expect(set.idToIndex[3]).toBe(0);
    const msg = '[MS-INV-01] invariant broken: move of slot 3, which is not in the array';
    expect(() => set.updateMemslots(slot(3, 0x40n), 'MOVE')).toThrow(msg);
    // Healthy: slot 3 (at index 0) moves up to 0x40.
    const ok = scratch();
    expect(() => ok.updateMemslots(slot(3, 0x40n), 'MOVE')).not.toThrow();
    expect(ok.idToMemslot(3)?.baseGfn).toBe(0x40n);
  });

  it('[MS-INV-02] update_memslots() with a slot at a neighbour\'s base_gfn, moving backward', () => {
    // Slot 3 (index 0, gfn 0x30) moves down onto slot 2's gfn 0x20: kvm_memslot_move_backward().
    const set = scratch();
    const err = new InvariantError('MS-INV-02', 'two slots at base_gfn 32 (move_backward)');
    expect(() => set.updateMemslots(slot(3, 0x20n), 'MOVE')).toThrow(err);
    expect(() => scratch().updateMemslots(slot(3, 0x20n), 'MOVE')).toThrow(InvariantError);
    // Healthy: just above slot 2's range.
    const ok = scratch();
    expect(() => ok.updateMemslots(slot(3, 0x21n), 'MOVE')).not.toThrow();
    expect(ok.ascending().map((s) => s.id)).toEqual([1, 2, 3]);
    // Below slot 2 (past it): the backward shift runs, and the slot lands between 1 and 2.
    const past = scratch();
    expect(() => past.updateMemslots(slot(3, 0x18n), 'MOVE')).not.toThrow();
    expect(past.ascending().map((s) => s.id)).toEqual([1, 3, 2]);
  });

  it('[MS-INV-02] update_memslots() with a slot at a neighbour\'s base_gfn, moving forward', () => {
    // Slot 1 (index 2, gfn 0x10) moves up onto slot 2's gfn 0x20: kvm_memslot_move_forward().
    const set = scratch();
    const msg = '[MS-INV-02] invariant broken: two slots at base_gfn 32 (move_forward)';
    expect(() => set.updateMemslots(slot(1, 0x20n), 'MOVE')).toThrow(InvariantError);
    expect(() => scratch().updateMemslots(slot(1, 0x20n), 'MOVE')).toThrow(msg);
    // A CREATE goes through move_forward only.
    const create = setup().set.dup('CREATE');
    expect(() => create.updateMemslots(slot(4, 0x30n), 'CREATE')).toThrow(new InvariantError('MS-INV-02', 'two slots at base_gfn 48 (move_forward)'));
    // Healthy: past slot 2, below slot 3.
    const ok = scratch();
    expect(() => ok.updateMemslots(slot(1, 0x28n), 'MOVE')).not.toThrow();
    expect(ok.ascending().map((s) => s.id)).toEqual([2, 1, 3]);
  });

  it('[MS-INV-01] kvm_set_memslot() DELETE or MOVE without an old slot', () => {
    for (const change of ['DELETE', 'MOVE'] as const) {
      const { inner } = setup();
      const err = new InvariantError('MS-INV-01', `${change} without an old slot`);
      expect(() => inner.setMemslot(0, null, slot(4, 0x40n), change).next(), change).toThrow(err);
      expect(() => setup().inner.setMemslot(0, null, slot(4, 0x40n), change).next(), change).toThrow(InvariantError);
    }
    // Healthy: with the old slot, the first step (the INVALID publish) is reached.
    const { inner } = setup();
    const old = inner.memslots[0]!.idToMemslot(1)!;
    expect(inner.setMemslot(0, old, slot(1, 0x40n), 'MOVE').next().done).toBe(false);
  });

  it('[MS-INV-01] __kvm_memslots() of an address space the profile lacks', () => {
    const { inner } = setup();
    for (const asId of [1, -1, 0.5]) {
      const msg = `address space ${asId} does not exist in profile x86_64-nosmm`;
      expect(() => inner.activeSet(asId), String(asId)).toThrow(RangeError);
      expect(() => inner.activeSet(asId), String(asId)).toThrow(msg);
    }
    expect(inner.activeSet(0).usedSlots).toBe(3);
  });
});

// ---------------------------------------------------------------------------------------------
// Scalable

interface ScalableInternals {
  __memslots: (readonly [KvmMemslots, KvmMemslots])[];
  nrPages: bigint;
  replaceMemslot(old: Memslot | null, neu: Memslot | null): void;
  replaceMemslotIn(slots: KvmMemslots, old: Memslot | null, neu: Memslot | null): void;
  activateMemslot(old: Memslot | null, neu: Memslot | null): WriterSteps<void>;
  activeSet(asId: number): KvmMemslots;
  inactiveSet(asId: number): KvmMemslots;
}

describe('scalable defensive checks', () => {
  function setup(): { impl: MemslotImpl; inner: ScalableInternals } {
    const impl = threeSlots(createScalableImpl);
    return { impl, inner: impl as unknown as ScalableInternals };
  }

  it('[MS-INV-01] kvm_replace_memslot() of an old slot the set does not hold', () => {
    for (const nodeIdx of [0, 1] as const) {
      const { inner } = setup();
      const set = inner.__memslots[0]![nodeIdx];
      // An id the set lacks.
      const absent = new InvariantError('MS-INV-01', `as 0: slot 4 is not in set ${nodeIdx}`);
      expect(() => inner.replaceMemslotIn(set, slot(4, 0x40n), null)).toThrow(absent);
      // The right id, but an equal copy rather than the slot object the set holds.
      const copy = { ...set.idToMemslot(1)! };
      expect(() => inner.replaceMemslotIn(set, copy, null)).toThrow(InvariantError);
      expect(() => inner.replaceMemslotIn(set, copy, slot(1, 0x40n))).toThrow(
        `[MS-INV-01] invariant broken: as 0: slot 1 is not in set ${nodeIdx}`,
      );
      expect(set.idHash.size).toBe(3);
    }
    // Healthy: the slot object itself is removed.
    const { inner } = setup();
    const set = inner.inactiveSet(0);
    expect(() => inner.replaceMemslotIn(set, set.idToMemslot(1), null)).not.toThrow();
    expect(set.idToMemslot(1)).toBeNull();
  });

  it('[MS-INV-01] kvm_replace_memslot() adding a second slot of an id', () => {
    const { inner } = setup();
    const set = inner.inactiveSet(0);
    const err = new InvariantError('MS-INV-01', 'as 0: id 1 twice in a set');
    // CREATE of an id the set already holds.
    expect(() => inner.replaceMemslotIn(set, null, slot(1, 0x40n))).toThrow(err);
    // Replacing slot 2 by a slot of id 3, which the set also holds.
    const other = setup();
    const s = other.inner.inactiveSet(0);
    expect(() => other.inner.replaceMemslotIn(s, s.idToMemslot(2), slot(3, 0x40n))).toThrow(InvariantError);
    expect(() => setup().inner.replaceMemslot(null, slot(3, 0x40n))).toThrow('[MS-INV-01] invariant broken: as 0: id 3 twice in a set');
    // Healthy: a new id, and a slot replaced by one of its own id.
    const ok = setup();
    const t = ok.inner.inactiveSet(0);
    expect(() => ok.inner.replaceMemslotIn(t, null, slot(4, 0x40n))).not.toThrow();
    expect(() => ok.inner.replaceMemslotIn(t, t.idToMemslot(2), slot(2, 0x50n))).not.toThrow();
    expect(t.idToMemslot(2)?.baseGfn).toBe(0x50n);
  });

  it('[MS-INV-01] kvm_memslots_get_as_id() with neither old nor new', () => {
    const { inner } = setup();
    const set = inner.inactiveSet(0);
    const err = new InvariantError('MS-INV-01', 'a memslot operation with neither old nor new');
    expect(() => inner.replaceMemslotIn(set, null, null)).toThrow(err);
    expect(() => inner.replaceMemslot(null, null)).toThrow(err);
    expect(() => inner.activateMemslot(null, null).next()).toThrow(InvariantError);
    expect(() => inner.activateMemslot(null, null).next()).toThrow(
      '[MS-INV-01] invariant broken: a memslot operation with neither old nor new',
    );
    // Healthy: the address space comes from whichever slot is given.
    expect(() => inner.replaceMemslot(null, slot(4, 0x40n))).not.toThrow();
    expect(set.idToMemslot(4)?.baseGfn).toBe(0x40n);
  });

  it('[MS-INV-01] __kvm_memslots() of an address space the profile lacks', () => {
    const { inner } = setup();
    for (const asId of [1, -1, 0.5]) {
      const msg = `address space ${asId} does not exist in profile x86_64-nosmm`;
      expect(() => inner.activeSet(asId), String(asId)).toThrow(RangeError);
      expect(() => inner.activeSet(asId), String(asId)).toThrow(msg);
      expect(() => inner.inactiveSet(asId), String(asId)).toThrow(msg);
    }
    expect(inner.activeSet(0).idHash.size).toBe(3);
  });
});

// ---------------------------------------------------------------------------------------------
// Shared helpers (impl/internal)

describe('shared defensive checks', () => {
  const impls = { legacy: createLegacyImpl, scalable: createScalableImpl };

  it('[MS-INV-01] checkAsId() rejects an address space the profile lacks', () => {
    for (const [asId, profile] of [
      [1, NOSMM],
      [2, NOSMM],
      [-1, NOSMM],
      [0.5, NOSMM],
      [2, X86],
      [1.5, X86],
      [Number.NaN, X86],
    ] as const) {
      const msg = `address space ${asId} does not exist in profile ${profile.name}`;
      expect(() => checkAsId(profile, asId), msg).toThrow(RangeError);
      expect(() => checkAsId(profile, asId), msg).toThrow(msg);
    }
    expect(() => checkAsId(NOSMM, 0)).not.toThrow();
    expect(() => checkAsId(X86, 0)).not.toThrow();
    expect(() => checkAsId(X86, 1)).not.toThrow();
  });

  it('[MS-INV-01] every lookup by address space rejects one the profile lacks, in both implementations', () => {
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

  it('[MS-INV-04] a swap that starts while another is in flight', () => {
    const gen = KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS | 5n;
    const err = new InvariantError('MS-INV-04', `generation ${gen} already has UPDATE_IN_PROGRESS`);
    expect(() => generationInProgress(gen)).toThrow(err);
    expect(() => generationInProgress(KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS)).toThrow(InvariantError);
    expect(() => generationInProgress(KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS)).toThrow(
      '[MS-INV-04] invariant broken: generation 9223372036854775808 already has UPDATE_IN_PROGRESS',
    );
    // Healthy: the flag is set on a generation without it.
    expect(generationInProgress(5n)).toBe(gen);
    expect(generationInProgress(0n)).toBe(KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS);
  });

  it('[MS-INT-01] an internal slot request with a user id, in both implementations', () => {
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
