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
  // Per node, by handle. Host addresses are kept as numbers only: a CREATE then leaves no
  // bigint behind in the tree, and a node's data is two doubles and a link word in typed
  // arrays, which the garbage collector neither copies nor traces. A number is exact up to
  // 2^53 - 1; an address past that (a profile's user_addr_max may be any u64) rounds, so a
  // node that has one also keeps its bigints in `wide`, and two equal numbers past 2^53 - 1
  // are told apart by those (see MAX_EXACT).
  private readonly slots = new ChunkedArray<T | undefined>(undefined);
  /** Node n's start at 2n and inclusive end `userspace_addr + (npages << PAGE_SHIFT) - 1` at 2n + 1. */
  private nums = new Float64Array(this.capacity * 2);
  /**
   * The node whose `last` is the largest in the subtree rooted here: `__subtree_last` is
   * its last. A handle, not the value, so that a wide last keeps its bigint.
   */
  private subtreeLastNodes = new Int32Array(this.capacity);
  /** [start, last] of every node with an address past 2^53 - 1 (none on x86-64). */
  private readonly wide = new Map<HvaNode, readonly [Hva, Hva]>();

  protected override grow(): void {
    super.grow();
    const nums = new Float64Array(this.capacity * 2);
    nums.set(this.nums);
    this.nums = nums;
    const sub = new Int32Array(this.capacity);
    sub.set(this.subtreeLastNodes);
    this.subtreeLastNodes = sub;
  }

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
    return this.wide.get(n)?.[0] ?? BigInt(this.nums[2 * n]!);
  }
  lastOf(n: HvaNode): Hva {
    return this.wide.get(n)?.[1] ?? BigInt(this.nums[2 * n + 1]!);
  }
  subtreeLastOf(n: HvaNode): Hva {
    return this.lastOf(this.subtreeLastNodes[n]!);
  }

  protected override pull(n: HvaNode): void {
    super.pull(n);
    const l = this.left(n);
    const r = this.right(n);
    const sub = this.subtreeLastNodes;
    let m = n;
    if (l !== NIL && this.lastBelow(m, sub[l]!)) m = sub[l]!;
    if (r !== NIL && this.lastBelow(m, sub[r]!)) m = sub[r]!;
    sub[n] = m;
  }

  /** last(a) < last(b). */
  private lastBelow(a: HvaNode, b: HvaNode): boolean {
    const x = this.nums[2 * a + 1]!;
    const y = this.nums[2 * b + 1]!;
    return x < y || (x === y && x > MAX_EXACT && this.wide.get(a)![1] < this.wide.get(b)![1]);
  }

  /** start <= subtreeLast(n), for a query start and its Number(). */
  private reaches(n: HvaNode, start: Hva, startNum: number): boolean {
    return !this.lastBelowValue(this.subtreeLastNodes[n]!, start, startNum);
  }

  /** last(n) < x, for a value and its Number(). */
  private lastBelowValue(n: HvaNode, x: Hva, xNum: number): boolean {
    const y = this.nums[2 * n + 1]!;
    return y < xNum || (y === xNum && y > MAX_EXACT && this.wide.get(n)![1] < x);
  }

  /** x < start(n), for a value and its Number(). */
  private belowStart(x: Hva, xNum: number, n: HvaNode): boolean {
    const y = this.nums[2 * n]!;
    return xNum < y || (xNum === y && y > MAX_EXACT && x < this.wide.get(n)![0]);
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
    this.nums[2 * node] = startNum;
    this.nums[2 * node + 1] = lastNum;
    if (startNum > MAX_EXACT || lastNum > MAX_EXACT) this.wide.set(node, [start, last]);
    const sub = this.subtreeLastNodes;
    sub[node] = node;
    let n = this.root;
    while (n !== NIL) {
      parent = n;
      // `if (parent->ITSUBTREE < last) parent->ITSUBTREE = last;`: every ancestor's subtree
      // will hold the new interval, so linkLeaf() need not carry it up to the root.
      if (this.lastBelow(sub[n]!, node)) sub[n] = node;
      left = this.belowStart(start, startNum, n);
      n = left ? this.left(n) : this.right(n);
    }
    this.linkLeaf(node, parent, left);
    return node;
  }

  /** Mirrors: interval_tree_remove() */
  remove(node: HvaNode): void {
    this.eraseNode(node);
    this.slots.set(node, undefined);
    // Stryker disable next-line ConditionalExpression: deleting what is not there does nothing
    if (this.wide.size > 0) this.wide.delete(node);
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
      if (!this.belowStart(last, lastNum, n)) {
        if (!this.lastBelowValue(n, start, startNum)) return n;
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
      if (this.belowStart(last, lastNum, n)) return NIL;
      if (!this.lastBelowValue(n, start, startNum)) return n;
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
 * The largest address a number holds exactly. Number() rounds past it but never reorders (it
 * is monotone), so unequal numbers decide a comparison, and equal numbers at or below it are
 * equal addresses; only equal numbers past it need the bigints.
 */
const MAX_EXACT = Number.MAX_SAFE_INTEGER;
