/**
 * The hva interval tree of one memslot set: `struct kvm_memslots.hva_tree`
 * (include/linux/interval_tree_generic.h instantiated as lib/interval_tree.c).
 */
import type { Hva } from '../../model/types.js';
import { AvlNode, AvlTree } from './avl.js';

/** One set's node for one slot: the kernel's `slot->hva_node[slots->node_idx]`. */
export class HvaNode<T> extends AvlNode<HvaNode<T>> {
  /** The largest `last` in the subtree rooted here (`__subtree_last`). */
  subtreeLast: Hva;
  constructor(
    readonly start: Hva,
    /** Inclusive end: `userspace_addr + (npages << PAGE_SHIFT) - 1`. */
    readonly last: Hva,
    readonly slot: T,
  ) {
    super();
    this.subtreeLast = last;
  }
}

/*
 * Invariant of the hva tree (serves [MS-LKP-05]; hva ranges are not required to be disjoint,
 * [MS-INV-02] is about gfns only):
 *
 *   An in-order walk yields the intervals by non-decreasing `start`; intervals with equal
 *   starts are allowed (several slots may alias one host range) and a new one goes to the
 *   right of the equal ones, as interval_tree_insert() does. Every node's `subtreeLast` is
 *   the maximum `last` over its subtree, so a query can skip every subtree whose
 *   subtreeLast is below the query start: a query costs O(log n + hits). The AVL invariant
 *   of ./avl.ts holds, and every rotation and erase refreshes `subtreeLast` through `pull()`.
 */
export class HvaTree<T> extends AvlTree<HvaNode<T>> {
  protected override pull(n: HvaNode<T>): void {
    super.pull(n);
    let m = n.last;
    if (n.left !== null && n.left.subtreeLast > m) m = n.left.subtreeLast;
    if (n.right !== null && n.right.subtreeLast > m) m = n.right.subtreeLast;
    n.subtreeLast = m;
  }

  /**
   * Adds the inclusive interval `[start, last]` for `slot`.
   * Mirrors: interval_tree_insert()
   * @returns the new node (the caller keeps it to remove it later).
   */
  insert(start: Hva, last: Hva, slot: T): HvaNode<T> {
    let parent: HvaNode<T> | null = null;
    let left = false;
    let n = this.root;
    while (n !== null) {
      parent = n;
      left = start < n.start;
      n = left ? n.left : n.right;
    }
    const node = new HvaNode(start, last, slot);
    this.linkLeaf(node, parent, left);
    return node;
  }

  /** Mirrors: interval_tree_remove() */
  remove(node: HvaNode<T>): void {
    this.eraseNode(node);
  }

  /**
   * The leftmost node of the subtree at `node` that intersects `[start, last]`, given that
   * `start <= node.subtreeLast`. Mirrors: interval_tree_subtree_search()
   */
  private subtreeSearch(node: HvaNode<T>, start: Hva, last: Hva): HvaNode<T> | null {
    let n = node;
    for (;;) {
      // Loop invariant: start <= n.subtreeLast.
      if (n.left !== null && start <= n.left.subtreeLast) {
        n = n.left;
        continue;
      }
      if (n.start <= last) {
        if (start <= n.last) return n;
        // By the loop invariant the max `last` >= start lies to the right here: always true.
        // Stryker disable next-line ConditionalExpression,LogicalOperator: always true by the loop invariant
        if (n.right !== null && start <= n.right.subtreeLast) {
          n = n.right;
          continue;
        }
      }
      return null;
    }
  }

  /**
   * The first node (by start) whose interval intersects the inclusive `[start, last]`.
   * Mirrors: interval_tree_iter_first()
   */
  iterFirst(start: Hva, last: Hva): HvaNode<T> | null {
    const root = this.root;
    if (root === null || root.subtreeLast < start) return null;
    return this.subtreeSearch(root, start, last);
  }

  /**
   * The next node after `node` (by start) that intersects `[start, last]`.
   * Mirrors: interval_tree_iter_next()
   */
  iterNext(node: HvaNode<T>, start: Hva, last: Hva): HvaNode<T> | null {
    let n = node;
    let rb = n.right;
    for (;;) {
      // Loop invariant: n.start <= last and rb === n.right. First search the right subtree.
      if (rb !== null && start <= rb.subtreeLast) return this.subtreeSearch(rb, start, last);
      // Move up until we come from a node's left child.
      let prev: HvaNode<T>;
      do {
        const p = n.parent;
        if (p === null) return null;
        prev = n;
        n = p;
        rb = n.right;
      } while (prev === rb);
      if (last < n.start) return null;
      if (start <= n.last) return n;
    }
  }

  /**
   * Every slot whose interval intersects the inclusive `[start, last]`, by ascending start.
   * Mirrors: kvm_for_each_memslot_in_hva_range()
   */
  query(start: Hva, last: Hva): T[] {
    const out: T[] = [];
    for (let n = this.iterFirst(start, last); n !== null; n = this.iterNext(n, start, last)) out.push(n.slot);
    return out;
  }
}
