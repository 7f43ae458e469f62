import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvariantError } from '../../model/types.js';
import { GfnTree, NO_ENTRY, gfnTreeLevelBound } from './gfn-tree.js';

/** A stand-in slot: a gfn range plus a tag to tell objects apart. */
interface Item {
  readonly baseGfn: bigint;
  readonly npages: bigint;
  readonly tag: number;
}

/** The oracle: items sorted by baseGfn, ranges disjoint. */
type Oracle = Item[];

type Op =
  | { readonly op: 'insert'; readonly gfn: bigint; readonly npages: bigint }
  | { readonly op: 'erase'; readonly pick: number }
  | { readonly op: 'replace'; readonly pick: number; readonly npages: bigint }
  | { readonly op: 'replaceWrongKey'; readonly pick: number; readonly delta: bigint };

/** Small gfns so that equal keys, adjacency and overlap are common; a few far ones. */
const gfnArb = fc.oneof({ weight: 6, arbitrary: fc.bigInt(0n, 64n) }, { weight: 1, arbitrary: fc.bigInt((1n << 40n) - 8n, (1n << 40n) + 8n) });
const npagesArb = fc.bigInt(1n, 6n);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('insert' as const), gfn: gfnArb, npages: npagesArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('erase' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('replace' as const), pick: fc.nat(), npages: npagesArb }) },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('replaceWrongKey' as const), pick: fc.nat(), delta: fc.bigInt(1n, 3n) }),
  },
);

const queryArb = fc.array(gfnArb, { minLength: 1, maxLength: 6 });

function containing(o: Oracle, gfn: bigint): Item | null {
  return o.find((s) => s.baseGfn <= gfn && gfn < s.baseGfn + s.npages) ?? null;
}

/** Checks the B+ tree and gfn-tree invariants, and that the tree holds exactly the oracle's items. */
function checkAgainstOracle(tree: GfnTree<Item>, o: Oracle): void {
  const items = tree.check();
  expect(items).toStrictEqual(o);
  for (let i = 1; i < items.length; i++) expect(items[i - 1]!.baseGfn < items[i]!.baseGfn).toBe(true);
  expect(tree.levels).toBeLessThanOrEqual(gfnTreeLevelBound(tree.size));
  // rb_next from rb_first and rb_prev from the last entry agree with the in-order walk.
  const fwd: Item[] = [];
  let last = NO_ENTRY;
  for (let e = tree.firstEntry(); e !== NO_ENTRY; e = tree.nextEntry(e)) {
    fwd.push(tree.slotOf(e));
    last = e;
  }
  const back: Item[] = [];
  for (let e = last; e !== NO_ENTRY; e = tree.prevEntry(e)) back.push(tree.slotOf(e));
  expect(fwd).toStrictEqual(o);
  expect(back.reverse()).toStrictEqual(o);
}

function checkQueries(tree: GfnTree<Item>, o: Oracle, gfns: readonly bigint[]): void {
  for (const gfn of gfns) {
    const hit = containing(o, gfn);
    expect(tree.searchSlot(gfn, false)).toBe(hit);
    const approx = tree.searchSlot(gfn, true);
    if (hit !== null) {
      expect(approx).toBe(hit);
    } else {
      const below = o.filter((s) => s.baseGfn < gfn).at(-1);
      const above = o.find((s) => s.baseGfn > gfn);
      const candidates = [below, above].filter((s) => s !== undefined);
      if (candidates.length === 0) expect(approx).toBeNull();
      else expect(candidates).toContain(approx);
    }
    const floor = tree.floor(gfn);
    expect(floor === NO_ENTRY ? null : tree.slotOf(floor)).toBe(o.filter((s) => s.baseGfn <= gfn).at(-1) ?? null);
    for (const width of [0n, 1n, 3n, 10n]) {
      const end = gfn + width;
      expect(tree.rangeSlots(gfn, end)).toStrictEqual(o.filter((s) => s.baseGfn < end && gfn < s.baseGfn + s.npages));
    }
  }
}

/** Runs `ops` against both the tree and the oracle, checking everything after each step. */
function run(ops: readonly Op[], queries: readonly bigint[]): void {
  const tree = new GfnTree<Item>();
  let o: Oracle = [];
  let tag = 0;
  for (const op of ops) {
    switch (op.op) {
      case 'insert': {
        const item: Item = { baseGfn: op.gfn, npages: op.npages, tag: tag++ };
        if (o.some((s) => s.baseGfn === op.gfn)) {
          expect(() => tree.insert(item)).toThrow(InvariantError);
          break;
        }
        // Keep the ranges disjoint, as the memslot overlap check does for the real tree.
        if (o.some((s) => item.baseGfn < s.baseGfn + s.npages && s.baseGfn < item.baseGfn + item.npages)) break;
        tree.insert(item);
        o = [...o, item].sort((a, b) => (a.baseGfn < b.baseGfn ? -1 : 1));
        break;
      }
      case 'erase': {
        if (o.length === 0) break;
        const victim = o[op.pick % o.length]!;
        tree.erase(victim);
        o = o.filter((s) => s !== victim);
        break;
      }
      case 'replace': {
        if (o.length === 0) break;
        const i = op.pick % o.length;
        const old = o[i]!;
        const next = o[i + 1];
        const room = next === undefined ? op.npages : next.baseGfn - old.baseGfn;
        const item: Item = { baseGfn: old.baseGfn, npages: op.npages < room ? op.npages : room, tag: tag++ };
        const entry = tree.entryOf(old);
        tree.replace(old, item);
        // In place: the same entry, the same shape.
        expect(tree.slotOf(entry)).toBe(item);
        o = o.map((s) => (s === old ? item : s));
        break;
      }
      case 'replaceWrongKey': {
        if (o.length === 0) break;
        const old = o[op.pick % o.length]!;
        const moved = { ...old, baseGfn: old.baseGfn + op.delta };
        expect(() => tree.replace(old, moved)).toThrow(InvariantError);
        break;
      }
    }
    checkAgainstOracle(tree, o);
    checkQueries(tree, o, queries);
  }
}

describe('gfn tree', () => {
  it('[MS-INV-02] insert/erase/replace keep a balanced tree strictly ordered by baseGfn (random ops vs array oracle)', () => {
    fc.assert(fc.property(fc.array(opArb, { maxLength: 60 }), queryArb, (ops, queries) => run(ops, queries)));
  });

  it('random ops on trees of several levels keep the B+ tree shape (splits, merges, borrows)', () => {
    const many = fc.oneof(
      { weight: 5, arbitrary: fc.record({ op: fc.constant('insert' as const), gfn: fc.bigInt(0n, 4000n), npages: fc.constant(1n) }) },
      { weight: 4, arbitrary: fc.record({ op: fc.constant('erase' as const), pick: fc.nat() }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('replace' as const), pick: fc.nat(), npages: fc.constant(1n) }) },
    );
    fc.assert(
      fc.property(fc.array(many, { minLength: 200, maxLength: 1000 }), (ops) => run(ops, [0n, 1999n, 4001n])),
      { numRuns: 8 },
    );
  });

  it('[MS-INV-02] a second node with an equal baseGfn throws InvariantError and leaves the tree unchanged', () => {
    const tree = new GfnTree<Item>();
    tree.insert({ baseGfn: 5n, npages: 1n, tag: 0 });
    tree.insert({ baseGfn: 9n, npages: 1n, tag: 1 });
    expect(() => tree.insert({ baseGfn: 9n, npages: 4n, tag: 2 })).toThrow(InvariantError);
    expect(() => tree.insert({ baseGfn: 5n, npages: 1n, tag: 3 })).toThrow('[MS-INV-02] invariant broken: gfn tree: a second node with baseGfn 0x5');
    expect(tree.inOrder().map((s) => s.tag)).toStrictEqual([0, 1]);
    tree.check();
    // replace() keeps the entry where it is, so the key must not change.
    const five = tree.slotOf(tree.firstEntry());
    expect(() => tree.replace(five, { baseGfn: 6n, npages: 1n, tag: 4 })).toThrow('[MS-INV-02] invariant broken: gfn tree: replace 0x5 by 0x6');
    // erase() and replace() of a slot the tree does not hold (a copy) are bugs too.
    expect(() => tree.erase({ ...five })).toThrow('[MS-INV-02] invariant broken: gfn tree: no entry for the slot at 0x5');
    expect(() => tree.replace({ ...five }, five)).toThrow(InvariantError);
  });

  it('[MS-LKP-02][MS-LKP-03] search finds the containing slot; the approx descent returns a slot bordering the hole', () => {
    const queries = fc.array(fc.bigInt(-2n, 80n), { minLength: 1, maxLength: 20 });
    fc.assert(fc.property(fc.array(opArb, { maxLength: 30 }), queries, (ops, queries) => run(ops, queries)));
  });

  it('[MS-LKP-04] range iteration yields every slot intersecting [start, end) in ascending order', () => {
    const tree = new GfnTree<Item>();
    const o: Item[] = [];
    for (let g = 0n; g < 40n; g += 4n) {
      const item = { baseGfn: g, npages: 2n, tag: Number(g) };
      tree.insert(item);
      o.push(item);
    }
    for (let start = -1n; start < 45n; start++) {
      for (let end = start - 2n; end < start + 12n; end++) {
        expect(tree.rangeSlots(start, end)).toStrictEqual(o.filter((s) => s.baseGfn < end && start < s.baseGfn + s.npages));
      }
    }
    expect(tree.iterStart(100n)).toBe(NO_ENTRY);
    expect(new GfnTree<Item>().rangeSlots(0n, 10n)).toStrictEqual([]);
  });

  it('[MS-INV-02] ascending, descending and interleaved inserts and erases stay within the level bound', () => {
    for (const order of ['asc', 'desc', 'zigzag'] as const) {
      const tree = new GfnTree<Item>();
      const items: Item[] = [];
      const n = 5000;
      for (let i = 0; i < n; i++) {
        const k = order === 'asc' ? i : order === 'desc' ? n - i : i % 2 === 0 ? i : n * 2 - i;
        const item = { baseGfn: BigInt(k), npages: 1n, tag: i };
        tree.insert(item);
        items.push(item);
        expect(tree.levels).toBeLessThanOrEqual(gfnTreeLevelBound(tree.size));
      }
      tree.check();
      for (let i = 0; i < n; i += 2) tree.erase(items[i]!);
      tree.check();
      expect(tree.size).toBe(n / 2);
      expect(tree.levels).toBeLessThanOrEqual(gfnTreeLevelBound(tree.size));
      for (let i = 1; i < n; i += 2) tree.erase(items[i]!);
      expect(tree.check()).toStrictEqual([]);
      expect([tree.size, tree.levels, tree.firstEntry()]).toStrictEqual([0, 0, NO_ENTRY]);
    }
  });

  it('the tree grows past its first records and reuses the records it frees', () => {
    const tree = new GfnTree<Item>();
    for (let round = 0; round < 3; round++) {
      const items = Array.from({ length: 3000 }, (_, i) => ({ baseGfn: BigInt(i * 3 + round), npages: 2n, tag: i }));
      for (const it of items) tree.insert(it);
      expect(tree.searchSlot(BigInt(2999 * 3 + round + 1), false)).toBe(items[2999]);
      for (const it of items) tree.erase(it);
      expect(tree.size).toBe(0);
    }
  });
});

describe('GfnTree.check catches a broken tree', () => {
  interface Range {
    readonly baseGfn: bigint;
    readonly npages: bigint;
  }
  /** 100 one-page slots, two levels of nodes. */
  function hundred(): { tree: GfnTree<Range>; raw: { f64: Float64Array; count: Int32Array; next: Int32Array } } {
    const tree = new GfnTree<Range>();
    for (let g = 0n; g < 100n; g++) tree.insert({ baseGfn: g * 2n, npages: 1n });
    expect(tree.check()).toHaveLength(100);
    expect(tree.levels).toBe(2);
    return { tree, raw: tree as unknown as { f64: Float64Array; count: Int32Array; next: Int32Array } };
  }

  it('a size that does not count the entries', () => {
    const { tree } = hundred();
    tree.size = 99;
    expect(() => tree.check()).toThrow('size 99, counted 100');
  });

  it("an entry whose keys are not its slot's", () => {
    const a = hundred();
    const e = a.tree.firstEntry();
    a.raw.f64[(e >> 5) * 64 + 32] = 7; // the first slot's end
    expect(() => a.tree.check()).toThrow('keys out of step with its slot');
  });

  it('a node below MIN entries, and a broken leaf link', () => {
    const a = hundred();
    const leaf = a.tree.firstEntry() >> 5;
    a.raw.count[leaf] = 3;
    expect(() => a.tree.check()).toThrow(`node ${leaf}: 3 entries`);
    const b = hundred();
    const first = b.tree.firstEntry() >> 5;
    b.raw.next[first] = 0;
    expect(() => b.tree.check()).toThrow('broken leaf links');
  });
});
