/**
 * The gfn tree of one memslot set: `struct kvm_memslots.gfn_tree` (include/linux/kvm_host.h).
 */
import { InvariantError, hex, type Gfn } from '../../model/types.js';
import { AvlNode, AvlTree } from './avl.js';

/** What the gfn tree needs to know about a slot. */
export interface GfnRange {
  readonly baseGfn: Gfn;
  readonly npages: bigint;
}

/** One set's node for one slot: the kernel's `slot->gfn_node[slots->node_idx]`. */
export class GfnNode<T extends GfnRange> extends AvlNode<GfnNode<T>> {
  constructor(public slot: T) {
    super();
  }
}

/*
 * Invariant of the gfn tree ([MS-INV-02], [MS-INV-01] via the id hash that points into it):
 *
 *   An in-order walk yields the slots of the set strictly ascending by baseGfn. Two nodes
 *   with the same baseGfn cannot exist: inserting one is a bug (the kernel's BUG() in
 *   kvm_insert_gfn_node()) and throws InvariantError('MS-INV-02'). Since the overlap check
 *   ([MS-OVL-01]) runs before every CREATE and MOVE, the gfn ranges are also pairwise
 *   disjoint, so ascending baseGfn is ascending range, which is what search_memslots() and
 *   the range iterator rely on. The AVL invariant of ./avl.ts bounds every descent by
 *   O(log n).
 */
export class GfnTree<T extends GfnRange> extends AvlTree<GfnNode<T>> {
  /**
   * Adds `slot`; its baseGfn must not be in the tree yet.
   * Mirrors: kvm_insert_gfn_node()
   * @returns the new node (the caller keeps it to erase or replace it later).
   */
  insert(slot: T): GfnNode<T> {
    const key = slot.baseGfn;
    let parent: GfnNode<T> | null = null;
    // Stryker disable next-line BooleanLiteral: the descent sets it before any use; an empty tree ignores it
    let left = false;
    let n = this.root;
    while (n !== null) {
      parent = n;
      if (key < n.slot.baseGfn) {
        left = true;
        n = n.left;
      } else if (key > n.slot.baseGfn) {
        left = false;
        n = n.right;
      } else {
        throw new InvariantError('MS-INV-02', `gfn tree: a second node with baseGfn ${hex(key)}`);
      }
    }
    const node = new GfnNode(slot);
    this.linkLeaf(node, parent, left);
    return node;
  }

  /** Mirrors: kvm_erase_gfn_node() */
  erase(node: GfnNode<T>): void {
    this.eraseNode(node);
  }

  /**
   * Switches `node` to `slot`, which has the same baseGfn, in O(1): the position in the tree
   * depends on baseGfn only. Mirrors: kvm_replace_gfn_node() (rb_replace_node())
   */
  replace(node: GfnNode<T>, slot: T): void {
    if (node.slot.baseGfn !== slot.baseGfn) {
      throw new InvariantError('MS-INV-02', `gfn tree: replace ${hex(node.slot.baseGfn)} by ${hex(slot.baseGfn)}`);
    }
    node.slot = slot;
  }

  /**
   * The descent of search_memslots(): the slot containing `gfn`; on a miss, with `approx`,
   * the last node visited (always a slot bordering the hole: the nearest below or the nearest
   * above), else null. Null for an empty tree either way.
   * Mirrors: search_memslots()
   */
  search(gfn: Gfn, approx: boolean): T | null {
    let slot: T | null = null;
    let n = this.root;
    while (n !== null) {
      slot = n.slot;
      if (gfn >= slot.baseGfn) {
        if (gfn < slot.baseGfn + slot.npages) return slot;
        n = n.right;
      } else {
        n = n.left;
      }
    }
    return approx ? slot : null;
  }

  /** The "upper bound" of `gfn`: the first node whose baseGfn is strictly greater, or null. */
  upperBound(gfn: Gfn): GfnNode<T> | null {
    let found: GfnNode<T> | null = null;
    let n = this.root;
    while (n !== null) {
      if (gfn < n.slot.baseGfn) {
        found = n;
        n = n.left;
      } else {
        n = n.right;
      }
    }
    return found;
  }

  /**
   * The first node that can intersect `[start, ...)`: the upper bound of start or the node
   * before it (rb_last when there is no upper bound), skipped when it ends at or before start.
   * Mirrors: kvm_memslot_iter_start()
   */
  iterStart(start: Gfn): GfnNode<T> | null {
    let node = this.upperBound(start);
    if (node !== null) {
      const prev = this.prev(node);
      if (prev !== null) node = prev;
    } else {
      node = this.last();
    }
    if (node !== null && node.slot.baseGfn + node.slot.npages <= start) node = this.next(node);
    return node;
  }

  /**
   * Every slot intersecting the half-open `[start, end)`, ascending by baseGfn.
   * Mirrors: kvm_for_each_memslot_in_gfn_range()
   */
  rangeSlots(start: Gfn, end: Gfn): T[] {
    const out: T[] = [];
    for (let n = this.iterStart(start); n !== null && n.slot.baseGfn < end; n = this.next(n)) out.push(n.slot);
    return out;
  }

  /** Every slot, ascending by baseGfn. O(n). */
  inOrder(): T[] {
    const out: T[] = [];
    for (let n = this.first(); n !== null; n = this.next(n)) out.push(n.slot);
    return out;
  }
}
