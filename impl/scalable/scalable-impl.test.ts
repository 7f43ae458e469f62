/**
 * The structure checks the suites lean on (checkAvl, and each implementation's
 * checkStructures) can fail: each corruption below is one they exist to catch, planted by hand
 * into a healthy structure. Without this, a check that never throws would pass every suite
 * (mutation testing found exactly that, docs/mutation.md).
 */
import { describe, expect, it } from 'vitest';
import type { Memslot } from '../../model/index.js';
import { NOSMM, PAGE, region } from '../../test/rules/helpers.js';
import { avlHeightBound, checkAvl } from './avl.js';
import { GfnTree, type GfnNode } from './gfn-tree.js';
import { createLegacyImpl, createScalableImpl, type MemslotImpl } from '../index.js';
import { LegacyKvmMemslots } from '../legacy/legacy-impl.js';
import { MemslotArray } from '../legacy/memslot-array.js';
import type { KvmMemslots } from './scalable-impl.js';

interface Range {
  readonly baseGfn: bigint;
  readonly npages: bigint;
}

/** A perfect tree of 7 nodes: gfns 0, 10, .., 60; the root holds 30. */
function sevenNodes(): { tree: GfnTree<Range>; nodes: GfnNode<Range>[] } {
  const tree = new GfnTree<Range>();
  const nodes = [30n, 10n, 50n, 0n, 20n, 40n, 60n].map((g) => tree.insert({ baseGfn: g, npages: 1n }));
  expect(checkAvl(tree).map((n) => n.slot.baseGfn)).toEqual([0n, 10n, 20n, 30n, 40n, 50n, 60n]);
  return { tree, nodes };
}

describe('checkAvl catches a broken tree', () => {
  it('[MS-INV-02] a child whose parent link points elsewhere', () => {
    const { tree, nodes } = sevenNodes();
    nodes[3]!.parent = nodes[2]!;
    expect(() => checkAvl(tree)).toThrow('broken parent link');
  });

  it('[MS-INV-02] a height that was not recomputed, at a leaf or at the root', () => {
    const a = sevenNodes();
    a.nodes[6]!.height = 2;
    expect(() => checkAvl(a.tree)).toThrow('stale height 2, expected 1');
    const b = sevenNodes();
    b.nodes[0]!.height = 4;
    expect(() => checkAvl(b.tree)).toThrow('stale height 4, expected 3');
  });

  it('[MS-INV-02] a node whose subtrees differ in height by two, on either side', () => {
    for (const side of ['left', 'right'] as const) {
      const { tree, nodes } = sevenNodes();
      // Without one of its two subtrees the root has 0 against 2.
      const child = side === 'left' ? nodes[1]! : nodes[2]!;
      nodes[0]![side] = null;
      child.parent = null;
      nodes[0]!.height = 3;
      const [hl, hr] = side === 'left' ? [0, 2] : [2, 0];
      expect(() => checkAvl(tree)).toThrow(`unbalanced node: ${hl} vs ${hr}`);
    }
  });

  it('[MS-INV-02] the AVL height bound holds for the sparsest AVL trees (Fibonacci trees), and tightly', () => {
    // N(h): the fewest nodes an AVL tree of height h can have.
    const fewest = [0, 1];
    for (let h = 2; h <= 30; h++) fewest.push(fewest[h - 1]! + fewest[h - 2]! + 1);
    for (let h = 2; h <= 30; h++) {
      const bound = avlHeightBound(fewest[h]!);
      expect(bound, `height ${h}, ${fewest[h]} nodes`).toBeGreaterThanOrEqual(h);
      expect(bound, `height ${h}, ${fewest[h]} nodes`).toBeLessThan(h + 0.6);
    }
  });

  it('[MS-INV-02] a size that does not count the nodes', () => {
    const { tree } = sevenNodes();
    tree.size = 8;
    expect(() => checkAvl(tree)).toThrow('size 8, counted 7');
  });
});

/** Three slots at gfn 0x10, 0x20, 0x30 (ids 1..3), one page each. */
function threeSlots(make: (p: typeof NOSMM) => MemslotImpl): MemslotImpl {
  const impl = make(NOSMM);
  for (const id of [1, 2, 3]) {
    const r = impl.setUserMemoryRegion(region(id, BigInt(id) * 0x10n * PAGE, PAGE, 0x100_0000n + BigInt(id) * PAGE));
    expect(r.ok).toBe(true);
  }
  return impl;
}

interface WithCheck {
  checkStructures(): void;
}

describe('legacy checkStructures catches a broken set', () => {
  function setup(): { impl: WithCheck; set: LegacyKvmMemslots } {
    const impl = threeSlots(createLegacyImpl) as unknown as WithCheck & { memslots: LegacyKvmMemslots[] };
    impl.checkStructures();
    return { impl, set: impl.memslots[0]! };
  }

  it('[MS-INV-01] id_to_index pointing at another id\'s record, or past used_slots', () => {
    const a = setup();
    a.set.idToIndex[1] = a.set.idToIndex[2]!;
    expect(() => a.impl.checkStructures()).toThrow(`as 0: id_to_index[1] = ${a.set.idToIndex[2]} is stale`);
    const b = setup();
    b.set.idToIndex[3] = 3;
    expect(() => b.impl.checkStructures()).toThrow('as 0: id_to_index[3] = 3 is stale');
  });

  it('[MS-INV-01] a live id too few or too many for used_slots', () => {
    const a = setup();
    a.set.idToIndex[2] = -1;
    expect(() => a.impl.checkStructures()).toThrow('as 0: 2 ids for 3 used slots');
    const b = setup();
    b.set.usedSlots = 2;
    // Index 2 is now past used_slots: whichever id maps there is stale.
    expect(() => b.impl.checkStructures()).toThrow(/is stale/);
  });

  it('[MS-INV-02] records not in strictly descending gfn order', () => {
    const { impl, set } = setup();
    // Highest first: index 0 holds slot 3. Giving it slot 2's range breaks the order.
    const s0 = set.memslots.get(0);
    set.memslots.set(0, { ...s0, baseGfn: 0x20n });
    expect(() => impl.checkStructures()).toThrow('as 0: memslots[1] is not strictly below memslots[0]');
  });

  it('[MS-INV-02] an lru_slot past used_slots', () => {
    const { impl, set } = setup();
    set.lruSlot = 3;
    expect(() => impl.checkStructures()).toThrow('as 0: lru_slot 3 past used_slots');
    set.lruSlot = 2;
    expect(() => impl.checkStructures()).not.toThrow();
  });
});

describe('scalable checkStructures catches a broken set', () => {
  function setup(): { impl: WithCheck; pair: readonly [KvmMemslots, KvmMemslots] } {
    const impl = threeSlots(createScalableImpl) as unknown as WithCheck & { __memslots: (readonly [KvmMemslots, KvmMemslots])[] };
    impl.checkStructures();
    return { impl, pair: impl.__memslots[0]! };
  }
  const slotOf = (set: KvmMemslots, id: number): Memslot => set.idHash.get(id)!.slot;

  it('[MS-INV-01] an id hash, gfn tree and hva tree that hold different numbers of slots', () => {
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

  it('[MS-INV-01] an id hash entry whose slot or nodes are another slot\'s', () => {
    const fields = ['slot', 'gfnNode', 'hvaNode'] as const;
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

  it('[MS-INV-01] an hva node the id hash does not point at', () => {
    const { impl, pair } = setup();
    const set = pair[0];
    const three = set.idHash.get(3)!;
    // The hva tree gets a second node for slot 3 in place of slot 2's.
    set.hvaTree.remove(set.idHash.get(2)!.hvaNode);
    set.hvaTree.insert(three.hvaNode.start, three.hvaNode.last, three.slot);
    expect(() => impl.checkStructures()).toThrow(`as 0 set ${set.nodeIdx}: stray hva node for slot 3`);
    // An hva node of an id the hash does not have at all.
    const other = setup();
    const s0 = other.pair[0];
    const two = s0.idHash.get(2)!;
    s0.hvaTree.remove(two.hvaNode);
    s0.hvaTree.insert(two.hvaNode.start, two.hvaNode.last, { ...two.slot, id: 9 });
    expect(() => other.impl.checkStructures()).toThrow(`as 0 set ${s0.nodeIdx}: stray hva node for slot 9`);
  });

  it('[MS-INV-01] a last_used_slot that is not a slot of its set', () => {
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

  it('[MS-INV-01] two sets of one address space holding different slot objects', () => {
    const { impl, pair } = setup();
    const set = pair[1];
    const nodes = set.idHash.get(2)!;
    const copy = { ...nodes.slot };
    nodes.gfnNode.slot = copy;
    (nodes.hvaNode as { slot: Memslot }).slot = copy;
    set.idHash.set(2, { ...nodes, slot: copy });
    expect(() => impl.checkStructures()).toThrow('as 0: the two sets differ');
  });
});

describe('implementation names', () => {
  it('[MS-INV-01] each implementation names itself as IMPLEMENTATIONS lists it (counterexamples print the name)', () => {
    expect(createLegacyImpl(NOSMM).name).toBe('legacy');
    expect(createScalableImpl(NOSMM).name).toBe('scalable');
  });
});

describe('legacy memslot array', () => {
  it('[MS-GEN-03] every record keeps its own fields, and flags can be set on any of them', () => {
    const arr = new MemslotArray(4);
    const slots = [0, 1, 2, 3].map((i) => ({ asId: i & 1, id: 10 + i, baseGfn: BigInt(100 - i * 10), npages: BigInt(i + 1), flags: i, userspaceAddr: BigInt(i) << 20n, dirtyBitmap: i === 2 ? null : i }));
    slots.forEach((s, i) => arr.set(i, s));
    expect([0, 1, 2, 3].map((i) => arr.get(i))).toEqual(slots);
    arr.setFlags(2, 0x10001);
    expect(arr.flags(2)).toBe(0x10001);
    expect([arr.flags(0), arr.flags(1), arr.flags(3)]).toEqual([0, 1, 3]);
    arr.moveRecords(0, 1, 3);
    expect(arr.get(0)).toEqual(slots[1]);
    expect(arr.get(1)).toEqual({ ...slots[2], flags: 0x10001 });
  });
});

describe('legacy id_to_index', () => {
  it('[MS-INV-01] is the kernel\'s short while every index fits, and 32-bit past SHRT_MAX + 1 ids', () => {
    expect(LegacyKvmMemslots.alloc(0x8000, 0n).idToIndex).toBeInstanceOf(Int16Array);
    const wide = LegacyKvmMemslots.alloc(0x8001, 0n).idToIndex;
    expect(wide).toBeInstanceOf(Int32Array);
    // Index 0x8000 survives the round trip (a short would read back -32768).
    wide[0x8000] = 0x8000;
    expect(wide[0x8000]).toBe(0x8000);
    expect([...wide.slice(0, 3)]).toEqual([-1, -1, -1]);
  });

  it('[MS-CRT-02] kvm_dup_memslots() copies the used slots, with room for one more only on CREATE', () => {
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
