/**
 * The scalable implementation (scalable-impl.ts, the kernel's design since 5.17) from the
 * inside, where no suite reaches on healthy input (mutation testing reported these NoCoverage,
 * docs/mutation.md):
 *
 * - its defensive checks (the kernel's WARN_ONs: InvariantError citing the rule a broken
 *   structure would violate, or RangeError for a caller's bad argument) fire when their
 *   precondition is broken, with their exact message;
 * - checkStructures(), which the suites lean on, catches each corruption it exists to catch.
 *
 * Each is reached by calling the (often private) method directly with a bad argument, or on a
 * structure broken by hand; where cheap, the same call on healthy input is shown not to throw.
 */
import { describe, expect, it } from 'vitest';
import { InvariantError, type Memslot } from '../../model/types.js';
import { createScalableImpl, type MemslotImpl } from '../index.js';
import type { WriterSteps } from '../interface.js';
import { slot, threeSlots } from '../three-slots.fixture.js';
import type { KvmMemslots } from './scalable-impl.js';

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
      expect(() => inner.replaceMemslotIn(set, copy, slot(1, 0x40n))).toThrow(`[MS-INV-01] invariant broken: as 0: slot 1 is not in set ${nodeIdx}`);
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
    expect(() => inner.activateMemslot(null, null).next()).toThrow('[MS-INV-01] invariant broken: a memslot operation with neither old nor new');
    // Healthy: the address space comes from whichever slot is given.
    expect(() => inner.replaceMemslot(null, slot(4, 0x40n))).not.toThrow();
    expect(set.idToMemslot(4)?.baseGfn).toBe(0x40n);
  });

  it('__kvm_memslots() of an address space the profile lacks is a caller error (RangeError)', () => {
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

interface WithCheck {
  checkStructures(): void;
}

describe('scalable checkStructures catches a broken set', () => {
  function setup(): { impl: WithCheck; pair: readonly [KvmMemslots, KvmMemslots] } {
    const impl = threeSlots(createScalableImpl) as unknown as WithCheck & { __memslots: (readonly [KvmMemslots, KvmMemslots])[] };
    impl.checkStructures();
    return { impl, pair: impl.__memslots[0]! };
  }
  const slotOf = (set: KvmMemslots, id: number): Memslot => set.idHash.get(id)!.slot;

  it('an id hash, gfn tree and hva tree that hold different numbers of slots', () => {
    for (const k of [0, 1] as const) {
      const { impl, pair } = setup();
      const set = pair[k];
      set.idHash.delete(2);
      expect(() => impl.checkStructures()).toThrow(`as 0 set ${set.nodeIdx}: 3 gfn nodes, 3 hva nodes, 2 ids`);
    }
    const { impl, pair } = setup();
    pair[0].hvaTree.remove(pair[0].idHash.get(3)!.hvaNode);
    expect(() => impl.checkStructures()).toThrow(`as 0 set ${pair[0].nodeIdx}: 3 gfn nodes, 2 hva nodes, 3 ids`);
  });

  it("an id hash entry whose slot or nodes are another slot's", () => {
    const fields = ['slot', 'hvaNode'] as const;
    for (const field of fields) {
      const { impl, pair } = setup();
      const set = pair[0];
      const one = set.idHash.get(1)!;
      const two = set.idHash.get(2)!;
      set.idHash.set(1, { ...one, [field]: two[field] });
      expect(() => impl.checkStructures(), field).toThrow(`as 0 set ${set.nodeIdx}: id hash out of step for slot 1`);
    }
    // A gfn node the id hash does not know.
    const { impl, pair } = setup();
    const set = pair[1];
    set.idHash.delete(3);
    set.idHash.set(9, set.idHash.get(1)!);
    expect(() => impl.checkStructures()).toThrow(`as 0 set ${set.nodeIdx}: id hash out of step for slot 3`);
  });

  it('an id hash entry whose hva node was removed, or now holds another slot', () => {
    const { impl, pair } = setup();
    const set = pair[0];
    const three = set.idHash.get(3)!;
    // The hva tree gets a second node for slot 3 in place of slot 2's.
    set.hvaTree.insert(set.hvaTree.startOf(three.hvaNode), set.hvaTree.lastOf(three.hvaNode), three.slot);
    set.hvaTree.remove(set.idHash.get(2)!.hvaNode);
    expect(() => impl.checkStructures()).toThrow(`as 0 set ${set.nodeIdx}: id hash out of step for slot 2`);
    // Slot 2's node removed and its record reused for a slot of an id the hash does not have.
    const other = setup();
    const s0 = other.pair[0];
    const two = s0.idHash.get(2)!;
    s0.hvaTree.remove(two.hvaNode);
    s0.hvaTree.insert(0x100_0000n, 0x100_0fffn, { ...two.slot, id: 9 });
    expect(() => other.impl.checkStructures()).toThrow(`as 0 set ${s0.nodeIdx}: id hash out of step for slot 2`);
  });

  it('a last_used_slot that is not a slot of its set', () => {
    const { impl, pair } = setup();
    const set = pair[0];
    set.lastUsedSlot = { ...slotOf(set, 2) };
    expect(() => impl.checkStructures()).toThrow(`as 0 set ${set.nodeIdx}: last_used_slot is not in the set`);
    set.lastUsedSlot = { ...slotOf(set, 2), id: 9 };
    expect(() => impl.checkStructures()).toThrow(`as 0 set ${set.nodeIdx}: last_used_slot is not in the set`);
    set.lastUsedSlot = slotOf(set, 2);
    expect(() => impl.checkStructures()).not.toThrow();
    set.lastUsedSlot = null;
    expect(() => impl.checkStructures()).not.toThrow();
  });

  it('two sets of one address space holding different slot objects', () => {
    const { impl, pair } = setup();
    const set = pair[1];
    const nodes = set.idHash.get(2)!;
    const copy = { ...nodes.slot };
    set.gfnTree.replace(nodes.slot, copy);
    const start = set.hvaTree.startOf(nodes.hvaNode);
    const last = set.hvaTree.lastOf(nodes.hvaNode);
    set.hvaTree.remove(nodes.hvaNode);
    set.idHash.set(2, { slot: copy, hvaNode: set.hvaTree.insert(start, last, copy) });
    expect(() => impl.checkStructures()).toThrow('as 0: the two sets differ');
  });
});
