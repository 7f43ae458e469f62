/**
 * The hva interval tree of one memslot set: `struct kvm_memslots.hva_tree`
 * (include/linux/interval_tree_generic.h instantiated as lib/interval_tree.c).
 */
import type { Hva } from '../../model/types.js';
import { AvlTree, NIL, type AvlNode } from './avl.js';
import { ChunkedArray } from './chunked.js';

/** One set's node for one slot: the kernel's `slot->hva_node[slots->node_idx]`. */
export type HvaNode = AvlNode;

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
export class HvaTree<T> extends AvlTree {
  // Per node, by handle, in chunks (./chunked.ts: a fill never copies them). Host addresses
  // stay bigint (a profile's user_addr_max may be any u64), each with its Number() next to
  // it: comparisons look at the numbers first (see less()).
  private readonly slots = new ChunkedArray<T | undefined>(undefined);
  private readonly starts = new ChunkedArray<Hva>(0n);
  private readonly startNums = new ChunkedArray<number>(0);
  /** Inclusive end: `userspace_addr + (npages << PAGE_SHIFT) - 1`. */
  private readonly lasts = new ChunkedArray<Hva>(0n);
  private readonly lastNums = new ChunkedArray<number>(0);
  /**
   * The node whose `last` is the largest in the subtree rooted here: `__subtree_last` is
   * its last. A handle, not the bigint, so that pull() stores a small integer.
   */
  private readonly subtreeLastNodes = new ChunkedArray<AvlNode>(NIL);

  /** The slot of `n`, or undefined for a record that holds none (a removed node). */
  slotAt(n: HvaNode): T | undefined {
    return this.slots.get(n);
  }
  slotOf(n: HvaNode): T {
    const s = this.slots.get(n);
    if (s === undefined) throw new Error(`hva tree: node ${n} holds no slot`);
    return s;
  }
  startOf(n: HvaNode): Hva {
    return this.starts.get(n);
  }
  lastOf(n: HvaNode): Hva {
    return this.lasts.get(n);
  }
  subtreeLastOf(n: HvaNode): Hva {
    return this.lasts.get(this.subtreeLastNodes.get(n));
  }

  protected override pull(n: HvaNode): void {
    super.pull(n);
    const l = this.left(n);
    const r = this.right(n);
    const sub = this.subtreeLastNodes;
    let m = n;
    if (l !== NIL && this.lastBelow(m, sub.get(l))) m = sub.get(l);
    if (r !== NIL && this.lastBelow(m, sub.get(r))) m = sub.get(r);
    sub.set(n, m);
  }

  /** last(a) < last(b). */
  private lastBelow(a: HvaNode, b: HvaNode): boolean {
    return less(this.lastNums.get(a), this.lasts.get(a), this.lastNums.get(b), this.lasts.get(b));
  }

  /** start <= subtreeLast(n), for a query start and its Number(). */
  private reaches(n: HvaNode, start: Hva, startNum: number): boolean {
    const m = this.subtreeLastNodes.get(n);
    return !less(this.lastNums.get(m), this.lasts.get(m), startNum, start);
  }

  /**
   * Adds the inclusive interval `[start, last]` for `slot`.
   * Mirrors: interval_tree_insert()
   * @returns the new node (the caller keeps it to remove it later).
   */
  insert(start: Hva, last: Hva, slot: T): HvaNode {
    let parent: HvaNode = NIL;
    let left = false;
    const startNum = Number(start);
    const lastNum = Number(last);
    const node = this.allocNode();
    this.slots.set(node, slot);
    this.starts.set(node, start);
    this.startNums.set(node, startNum);
    this.lasts.set(node, last);
    this.lastNums.set(node, lastNum);
    this.subtreeLastNodes.set(node, node);
    const sub = this.subtreeLastNodes;
    let n = this.root;
    while (n !== NIL) {
      parent = n;
      // `if (parent->ITSUBTREE < last) parent->ITSUBTREE = last;`: every ancestor's subtree
      // will hold the new interval, so linkLeaf() need not carry it up to the root.
      if (this.lastBelow(sub.get(n), node)) sub.set(n, node);
      left = less(startNum, start, this.startNums.get(n), this.starts.get(n));
      n = left ? this.left(n) : this.right(n);
    }
    this.linkLeaf(node, parent, left);
    return node;
  }

  /** Mirrors: interval_tree_remove() */
  remove(node: HvaNode): void {
    this.eraseNode(node);
    this.slots.set(node, undefined);
  }

  /**
   * The leftmost node of the subtree at `node` that intersects `[start, last]`, given that
   * `start <= subtreeLast(node)`. Mirrors: interval_tree_subtree_search()
   */
  private subtreeSearch(node: HvaNode, start: Hva, last: Hva): HvaNode {
    const startNum = Number(start);
    const lastNum = Number(last);
    let n = node;
    for (;;) {
      // Loop invariant: start <= subtreeLast(n).
      const l = this.left(n);
      if (l !== NIL && this.reaches(l, start, startNum)) {
        n = l;
        continue;
      }
      if (!less(lastNum, last, this.startNums.get(n), this.starts.get(n))) {
        if (!less(this.lastNums.get(n), this.lasts.get(n), startNum, start)) return n;
        const r = this.right(n);
        // By the loop invariant the max `last` >= start lies to the right here: always true.
        // Stryker disable next-line ConditionalExpression,LogicalOperator: always true by the loop invariant
        if (r !== NIL && this.reaches(r, start, startNum)) {
          n = r;
          continue;
        }
      }
      return NIL;
    }
  }

  /**
   * The first node (by start) whose interval intersects the inclusive `[start, last]`.
   * Mirrors: interval_tree_iter_first()
   */
  iterFirst(start: Hva, last: Hva): HvaNode {
    const root = this.root;
    if (root === NIL || !this.reaches(root, start, Number(start))) return NIL;
    return this.subtreeSearch(root, start, last);
  }

  /**
   * The next node after `node` (by start) that intersects `[start, last]`.
   * Mirrors: interval_tree_iter_next()
   */
  iterNext(node: HvaNode, start: Hva, last: Hva): HvaNode {
    const startNum = Number(start);
    const lastNum = Number(last);
    let n = node;
    let rb = this.right(n);
    for (;;) {
      // Loop invariant: start(n) <= last and rb === right(n). First search the right subtree.
      if (rb !== NIL && this.reaches(rb, start, startNum)) return this.subtreeSearch(rb, start, last);
      // Move up until we come from a node's left child.
      let prev: HvaNode;
      do {
        const p = this.parent(n);
        if (p === NIL) return NIL;
        prev = n;
        n = p;
        rb = this.right(n);
      } while (prev === rb);
      if (less(lastNum, last, this.startNums.get(n), this.starts.get(n))) return NIL;
      if (!less(this.lastNums.get(n), this.lasts.get(n), startNum, start)) return n;
    }
  }

  /**
   * Every slot whose interval intersects the inclusive `[start, last]`, by ascending start.
   * Mirrors: kvm_for_each_memslot_in_hva_range()
   */
  query(start: Hva, last: Hva): T[] {
    const out: T[] = [];
    for (let n = this.iterFirst(start, last); n !== NIL; n = this.iterNext(n, start, last)) out.push(this.slotOf(n));
    return out;
  }
}

/**
 * `a < b` for two u64 bigints given their Number()s too: Number() rounds but never reorders
 * (it is monotone), so unequal numbers decide, and only equal ones (the same value, or two
 * values past 2^53 that round alike) need the bigint comparison.
 */
function less(aNum: number, a: Hva, bNum: number, b: Hva): boolean {
  return aNum < bNum || (aNum === bNum && a < b);
}
