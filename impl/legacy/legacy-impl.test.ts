/**
 * The legacy implementation (legacy-impl.ts, the 5.10 design) from the inside, where no suite
 * reaches on healthy input (mutation testing reported these NoCoverage, docs/mutation.md):
 *
 * - its defensive checks (the kernel's WARN_ONs: InvariantError citing the rule a broken
 *   structure would violate, or RangeError for a caller's bad argument) fire when their
 *   precondition is broken, with their exact message;
 * - checkStructures(), which the suites lean on, catches each corruption it exists to catch;
 * - id_to_index and kvm_dup_memslots() keep the kernel's shapes.
 *
 * Each is reached by calling the (often private) method directly with a bad argument, or on a
 * structure broken by hand; where cheap, the same call on healthy input is shown not to throw.
 */
import { describe, expect, it } from 'vitest';
import { InvariantError, type Memslot } from '../../model/types.js';
import { createLegacyImpl, type MemslotImpl } from '../index.js';
import type { WriterSteps } from '../interface.js';
import { slot, threeSlots } from '../three-slots.fixture.js';
import { LegacyKvmMemslots } from './legacy-impl.js';

type ChangeKind = 'CREATE' | 'DELETE' | 'MOVE' | 'FLAGS_ONLY';

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

  it("[MS-INV-02] update_memslots() with a slot at a neighbour's base_gfn, moving backward", () => {
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

  it("[MS-INV-02] update_memslots() with a slot at a neighbour's base_gfn, moving forward", () => {
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

  it('__kvm_memslots() of an address space the profile lacks is a caller error (RangeError)', () => {
    const { inner } = setup();
    for (const asId of [1, -1, 0.5]) {
      const msg = `address space ${asId} does not exist in profile x86_64-nosmm`;
      expect(() => inner.activeSet(asId), String(asId)).toThrow(RangeError);
      expect(() => inner.activeSet(asId), String(asId)).toThrow(msg);
    }
    expect(inner.activeSet(0).usedSlots).toBe(3);
  });
});

interface WithCheck {
  checkStructures(): void;
}

describe('legacy checkStructures catches a broken set', () => {
  function setup(): { impl: WithCheck; set: LegacyKvmMemslots } {
    const impl = threeSlots(createLegacyImpl) as unknown as WithCheck & { memslots: LegacyKvmMemslots[] };
    impl.checkStructures();
    return { impl, set: impl.memslots[0]! };
  }

  it("id_to_index pointing at another id's record, or past used_slots", () => {
    const a = setup();
    a.set.idToIndex[1] = a.set.idToIndex[2]!;
    expect(() => a.impl.checkStructures()).toThrow(`as 0: id_to_index[1] = ${a.set.idToIndex[2]} is stale`);
    const b = setup();
    b.set.idToIndex[3] = 3;
    expect(() => b.impl.checkStructures()).toThrow('as 0: id_to_index[3] = 3 is stale');
  });

  it('a live id too few or too many for used_slots', () => {
    const a = setup();
    a.set.idToIndex[2] = -1;
    expect(() => a.impl.checkStructures()).toThrow('as 0: 2 ids for 3 used slots');
    const b = setup();
    b.set.usedSlots = 2;
    // Index 2 is now past used_slots: whichever id maps there is stale.
    expect(() => b.impl.checkStructures()).toThrow(/is stale/);
  });

  it('records not in strictly descending gfn order', () => {
    const { impl, set } = setup();
    // Highest first: index 0 holds slot 3. Giving it slot 2's range breaks the order.
    const s0 = set.memslots.get(0);
    set.memslots.set(0, { ...s0, baseGfn: 0x20n });
    expect(() => impl.checkStructures()).toThrow('as 0: memslots[1] is not strictly below memslots[0]');
  });

  it('an lru_slot past used_slots', () => {
    const { impl, set } = setup();
    set.lruSlot = 3;
    expect(() => impl.checkStructures()).toThrow('as 0: lru_slot 3 past used_slots');
    set.lruSlot = 2;
    expect(() => impl.checkStructures()).not.toThrow();
  });
});

describe('legacy id_to_index and kvm_dup_memslots()', () => {
  it("id_to_index is the kernel's short while every index fits, and 32-bit past SHRT_MAX + 1 ids", () => {
    expect(LegacyKvmMemslots.alloc(0x8000, 0n).idToIndex).toBeInstanceOf(Int16Array);
    const wide = LegacyKvmMemslots.alloc(0x8001, 0n).idToIndex;
    expect(wide).toBeInstanceOf(Int32Array);
    // Index 0x8000 survives the round trip (a short would read back -32768).
    wide[0x8000] = 0x8000;
    expect(wide[0x8000]).toBe(0x8000);
    expect([...wide.slice(0, 3)]).toEqual([-1, -1, -1]);
  });

  it('kvm_dup_memslots() copies the used slots, with room for one more only on CREATE', () => {
    const impl = threeSlots(createLegacyImpl) as unknown as { memslots: LegacyKvmMemslots[] };
    const set = impl.memslots[0]!;
    expect(set.dup('CREATE').memslots.capacity).toBe(4);
    for (const change of ['DELETE', 'MOVE', 'FLAGS_ONLY'] as const) expect(set.dup(change).memslots.capacity).toBe(3);
    const copy = set.dup('MOVE');
    expect(copy.ascending()).toEqual(set.ascending());
    expect([copy.usedSlots, copy.lruSlot, copy.generation]).toEqual([set.usedSlots, set.lruSlot, set.generation]);
    expect(copy.idToIndex).not.toBe(set.idToIndex);
    expect([...copy.idToIndex]).toEqual([...set.idToIndex]);
  });
});
