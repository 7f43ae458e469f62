/**
 * checkAvl() (avl.ts), which the tree tests and checkStructures() lean on, can fail: each
 * corruption below is one it exists to catch, planted by hand into a healthy tree. Without
 * this, a check that never throws would pass every suite (mutation testing found exactly that,
 * docs/mutation.md). The height bound it enforces is shown tight on the sparsest AVL trees.
 */
import { describe, expect, it } from 'vitest';
import { NIL, avlHeightBound, checkAvl } from './avl.js';
import { HvaTree, type HvaNode } from './hva-tree.js';

/** A perfect tree of 7 nodes: starts 0, 10, .., 60; the root holds 30. */
function sevenNodes(): { tree: HvaTree<number>; nodes: HvaNode[] } {
  const tree = new HvaTree<number>();
  const nodes = [30n, 10n, 50n, 0n, 20n, 40n, 60n].map((g) => tree.insert(g, g, Number(g)));
  expect(checkAvl(tree).map((n) => tree.slotOf(n))).toEqual([0, 10, 20, 30, 40, 50, 60]);
  return { tree, nodes };
}

describe('checkAvl catches a broken tree', () => {
  it('a child whose parent link points elsewhere', () => {
    const { tree, nodes } = sevenNodes();
    tree.setParent(nodes[3]!, nodes[2]!);
    expect(() => checkAvl(tree)).toThrow('broken parent link');
  });

  it('a height that was not recomputed, at a leaf or at the root', () => {
    const a = sevenNodes();
    a.tree.setHeight(a.nodes[6]!, 2);
    expect(() => checkAvl(a.tree)).toThrow('stale height 2, expected 1');
    const b = sevenNodes();
    b.tree.setHeight(b.nodes[0]!, 4);
    expect(() => checkAvl(b.tree)).toThrow('stale height 4, expected 3');
  });

  it('a node whose subtrees differ in height by two, on either side', () => {
    for (const side of ['left', 'right'] as const) {
      const { tree, nodes } = sevenNodes();
      // Without one of its two subtrees the root has 0 against 2.
      const child = side === 'left' ? nodes[1]! : nodes[2]!;
      if (side === 'left') tree.setLeft(nodes[0]!, NIL);
      else tree.setRight(nodes[0]!, NIL);
      tree.setParent(child, NIL);
      tree.setHeight(nodes[0]!, 3);
      const [hl, hr] = side === 'left' ? [0, 2] : [2, 0];
      expect(() => checkAvl(tree)).toThrow(`unbalanced node: ${hl} vs ${hr}`);
    }
  });

  it('the AVL height bound holds for the sparsest AVL trees (Fibonacci trees), and tightly', () => {
    // N(h): the fewest nodes an AVL tree of height h can have.
    const fewest = [0, 1];
    for (let h = 2; h <= 30; h++) fewest.push(fewest[h - 1]! + fewest[h - 2]! + 1);
    for (let h = 2; h <= 30; h++) {
      const bound = avlHeightBound(fewest[h]!);
      expect(bound, `height ${h}, ${fewest[h]} nodes`).toBeGreaterThanOrEqual(h);
      expect(bound, `height ${h}, ${fewest[h]} nodes`).toBeLessThan(h + 0.6);
    }
  });

  it('a size that does not count the nodes', () => {
    const { tree } = sevenNodes();
    tree.size = 8;
    expect(() => checkAvl(tree)).toThrow('size 8, counted 7');
  });
});
