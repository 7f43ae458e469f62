import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NIL, avlHeightBound, checkAvl } from './avl.js';
import { HvaTree, type HvaNode } from './hva-tree.js';

/** A stand-in slot: an inclusive interval plus a tag. */
interface Item {
  readonly start: bigint;
  readonly last: bigint;
  readonly tag: number;
}

type Op = { readonly op: 'insert'; readonly start: bigint; readonly len: bigint } | { readonly op: 'remove'; readonly pick: number };

/**
 * Small starts so that equal starts (aliased host ranges) and overlaps are common; some at the
 * edge of x86's user addresses; some across 2^53, where a float64 stops being exact, and just
 * below 2^64, where neighbouring addresses round to one float64 (spacing 2048-4096), so that
 * the tree's exact comparisons of the bigints it keeps aside for them decide.
 */
const startArb = fc.oneof(
  { weight: 6, arbitrary: fc.bigInt(0n, 40n) },
  { weight: 1, arbitrary: fc.bigInt((1n << 47n) - 16n, 1n << 47n) },
  { weight: 1, arbitrary: fc.bigInt((1n << 53n) - 20n, (1n << 53n) + 20n) },
  { weight: 2, arbitrary: fc.bigInt((1n << 64n) - 64n, (1n << 64n) - 16n) },
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('insert' as const), start: startArb, len: fc.bigInt(1n, 12n) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('remove' as const), pick: fc.nat() }) },
);
const rangeArb = fc.tuple(startArb, fc.bigInt(0n, 15n)).map(([start, w]) => ({ start, last: start + w }));

/** Checks the AVL invariant, the start order and every node's subtree max. */
function checkHva(tree: HvaTree<Item>): HvaNode[] {
  const nodes = checkAvl(tree);
  for (let i = 1; i < nodes.length; i++) expect(tree.startOf(nodes[i - 1]!) <= tree.startOf(nodes[i]!)).toBe(true);
  const subtreeMax = (n: HvaNode): bigint => {
    if (n === NIL) return -1n;
    const l = subtreeMax(tree.left(n));
    const r = subtreeMax(tree.right(n));
    let m = tree.lastOf(n);
    if (l > m) m = l;
    if (r > m) m = r;
    expect(tree.subtreeLastOf(n)).toBe(m);
    return m;
  };
  subtreeMax(tree.root);
  expect(tree.height()).toBeLessThanOrEqual(avlHeightBound(tree.size));
  return nodes;
}

function run(ops: readonly Op[], queries: readonly { start: bigint; last: bigint }[]): void {
  const tree = new HvaTree<Item>();
  const nodes = new Map<Item, HvaNode>();
  // The oracle, in insertion order; a stable sort by start gives the tree's in-order walk
  // (equal starts go to the right of the ones already there, and rotations keep the order).
  let o: Item[] = [];
  let tag = 0;
  for (const op of ops) {
    if (op.op === 'insert') {
      const item: Item = { start: op.start, last: op.start + op.len - 1n, tag: tag++ };
      nodes.set(item, tree.insert(item.start, item.last, item));
      o.push(item);
    } else if (o.length > 0) {
      const victim = o[op.pick % o.length]!;
      tree.remove(nodes.get(victim)!);
      nodes.delete(victim);
      o = o.filter((s) => s !== victim);
    }
    const sorted = [...o].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    expect(checkHva(tree).map((n) => tree.slotOf(n))).toStrictEqual(sorted);
    for (const q of queries) {
      const expected = sorted.filter((s) => s.start <= q.last && q.start <= s.last);
      expect(tree.query(q.start, q.last)).toStrictEqual(expected);
      const first = tree.iterFirst(q.start, q.last);
      expect(first === NIL ? null : tree.slotOf(first)).toBe(expected[0] ?? null);
    }
  }
}

describe('hva interval tree', () => {
  it('[MS-LKP-05] overlap queries on the inclusive [start, last] match an array oracle under random insert/remove', () => {
    const queries = fc.array(rangeArb, { minLength: 1, maxLength: 6 });
    fc.assert(fc.property(fc.array(opArb, { maxLength: 60 }), queries, (ops, queries) => run(ops, queries)));
  });

  it('[MS-LKP-05] several intervals may share a start; each is found and removed by its own node', () => {
    const tree = new HvaTree<Item>();
    const items = [0, 1, 2, 3].map((tag) => ({ start: 0x1000n, last: 0x1fffn + BigInt(tag) * 0x1000n, tag }));
    const nodes = items.map((it) => tree.insert(it.start, it.last, it));
    expect(tree.query(0x2000n, 0x2000n).map((s) => s.tag)).toStrictEqual([1, 2, 3]);
    tree.remove(nodes[2]!);
    checkHva(tree);
    expect(tree.query(0n, 0x10000n).map((s) => s.tag)).toStrictEqual([0, 1, 3]);
    // Touching is not overlapping: [0x1000, 0x1fff] ends just before 0x2000.
    expect(tree.query(0x2000n, 0x2fffn).map((s) => s.tag)).toStrictEqual([1, 3]);
    expect(tree.query(0n, 0xfffn)).toStrictEqual([]);
  });

  it('the subtree max and the AVL height bound survive long ascending runs and erasures', () => {
    const tree = new HvaTree<Item>();
    const nodes: HvaNode[] = [];
    const items: Item[] = [];
    for (let i = 0; i < 1500; i++) {
      const it = { start: BigInt(i) * 0x1000n, last: BigInt(i) * 0x1000n + (i % 7 === 0 ? 0x100000n : 0xfffn), tag: i };
      nodes.push(tree.insert(it.start, it.last, it));
      items.push(it);
    }
    checkHva(tree);
    for (let i = 0; i < 1500; i += 3) tree.remove(nodes[i]!);
    checkHva(tree);
    const hits = tree.query(0x50000n, 0x50000n).map((s) => s.tag);
    const expected = items.filter((s) => s.tag % 3 !== 0 && s.start <= 0x50000n && 0x50000n <= s.last);
    expect(hits).toStrictEqual(expected.map((s) => s.tag));
  });

  it('[MS-LKP-05] addresses past 2^53 that round to the same number are still told apart', () => {
    const big = 1n << 60n;
    const tree = new HvaTree<number>();
    // Number() gives 2^60 for each of these starts and lasts.
    const items: [bigint, bigint, number][] = [
      [big + 2n, big + 3n, 2],
      [big, big, 0],
      [big + 1n, big + 1n, 1],
      [big + 4n, big + 40n, 4],
    ];
    for (const [start, last, tag] of items) tree.insert(start, last, tag);
    checkAvl(tree);
    for (const [start, last, tag] of items) {
      expect(tree.query(start, start)).toContain(tag);
      expect(tree.query(last, last)).toContain(tag);
    }
    expect(tree.query(big + 1n, big + 1n)).toStrictEqual([1]);
    expect(tree.query(big + 3n, big + 4n)).toStrictEqual([2, 4]);
    expect(tree.query(big - 1n, big - 1n)).toStrictEqual([]);
    expect(tree.query(big + 41n, big + 41n)).toStrictEqual([]);
    expect(checkAvl(tree).map((n) => tree.slotOf(n))).toStrictEqual([0, 1, 2, 4]);
    expect(tree.subtreeLastOf(tree.root)).toBe(big + 40n);
  });

  it('[MS-LKP-05] an interval is found from its last byte, not from the byte after; an empty tree finds nothing', () => {
    expect(new HvaTree<number>().query(0n, 0xffffn)).toEqual([]);
    expect(new HvaTree<number>().iterFirst(0n, 0n)).toBe(NIL);
    // Seven one-page intervals, so that some sit in right subtrees and iter_next climbs.
    const tree = new HvaTree<number>();
    for (const i of [3, 1, 5, 0, 2, 4, 6]) tree.insert(BigInt(i) * 0x1000n, BigInt(i) * 0x1000n + 0xfffn, i);
    for (let i = 0; i < 7; i++) {
      const lastByte = BigInt(i) * 0x1000n + 0xfffn;
      expect(tree.query(lastByte, lastByte), `interval ${i} from its last byte`).toEqual([i]);
      // From the last byte of the one before: both, in order.
      if (i > 0) expect(tree.query(lastByte - 0x1000n, lastByte)).toEqual([i - 1, i]);
    }
    expect(tree.query(0x7000n, 0x8000n)).toEqual([]);
    expect(tree.query(0x0fffn, 0x6000n)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });
});
