/**
 * A deterministic AVL tree with parent links: the balanced-tree core under the hva interval
 * tree. It stands in for the kernel's rb-tree (lib/rbtree.c): the same operations (link a
 * leaf and rebalance, erase a node, rb_first/rb_last/rb_next/rb_prev) and the same
 * augmentation hook (rb_augment_callbacks), with an AVL balance rule instead of colours.
 * (The gfn tree, whose lookups are the hot path, is a B+ tree: ./gfn-tree.ts.)
 *
 * Storage. The nodes are records in one typed array, not objects: a node is a handle (the
 * record's index), `NIL` (0) is no node, and record 0 is never handed out, so `height(NIL)` is
 * 0 without a test. A record is four 32-bit link words (left, right, parent, height); a
 * subclass keeps its payload in arrays indexed by the handle. A CREATE then allocates no node
 * objects for the garbage collector to trace at every major GC. Freed records go on a free
 * list; the array doubles when it is full.
 *
 * Nodes are erased by identity, never by copying a payload from one record to another:
 * callers keep their handles (a memslot set's id hash points at them, like the kernel's
 * `container_of(&slot->hva_node[idx])`), so a handle must stay the node of its payload.
 *
 * Invariant (checked by `checkAvl` in the unit tests):
 *   - every child's `parent` is the node that links it, the root's `parent` is NIL;
 *   - `height` = 1 + max(height(left), height(right)), height(NIL) = 0;
 *   - |height(left) - height(right)| <= 1 at every node, so a tree of n nodes has height
 *     below 1.4405 * log2(n + 2) - 0.3277 and every descent is O(log n);
 *   - the ordering rule of the subclass (duplicates to the right for the hva tree) holds for an in-order walk;
 *   - `pull()` data (the interval tree's subtree max) is up to date at every node.
 */

/** A node: the index of its record. */
export type AvlNode = number;
/** No node (the kernel's NULL `struct rb_node *`). */
export const NIL: AvlNode = 0;

/** Offsets of the link words in a record. */
const LEFT = 0;
const RIGHT = 1;
const PARENT = 2;
const HEIGHT = 3;
/** Words per record. */
const STRIDE = 4;
const INITIAL_RECORDS = 8;

export abstract class AvlTree {
  root: AvlNode = NIL;
  size = 0;
  /** The records: node n's links at n * STRIDE. */
  private i32 = new Int32Array(INITIAL_RECORDS * STRIDE);
  /** Records handed out so far, record 0 (NIL) included: the next fresh one. */
  private used = 1;
  /** Erased records, linked through their `parent` word. */
  private free: AvlNode = NIL;

  left(n: AvlNode): AvlNode {
    return this.i32[n * STRIDE + LEFT]!;
  }
  right(n: AvlNode): AvlNode {
    return this.i32[n * STRIDE + RIGHT]!;
  }
  parent(n: AvlNode): AvlNode {
    return this.i32[n * STRIDE + PARENT]!;
  }
  /** The height of the subtree at `n` (0 for NIL). */
  heightOf(n: AvlNode): number {
    return this.i32[n * STRIDE + HEIGHT]!;
  }

  // The raw link writes: the tree's own, and the structure-check tests' way to break a tree.
  setLeft(n: AvlNode, v: AvlNode): void {
    this.i32[n * STRIDE + LEFT] = v;
  }
  setRight(n: AvlNode, v: AvlNode): void {
    this.i32[n * STRIDE + RIGHT] = v;
  }
  setParent(n: AvlNode, v: AvlNode): void {
    this.i32[n * STRIDE + PARENT] = v;
  }
  setHeight(n: AvlNode, v: number): void {
    this.i32[n * STRIDE + HEIGHT] = v;
  }

  /** A record for a new node, links cleared. The subclass fills in its fields. */
  protected allocNode(): AvlNode {
    let n = this.free;
    if (n !== NIL) {
      this.free = this.parent(n);
    } else {
      if ((this.used + 1) * STRIDE > this.i32.length) this.grow();
      n = this.used++;
    }
    this.setLeft(n, NIL);
    this.setRight(n, NIL);
    this.setParent(n, NIL);
    this.setHeight(n, 1);
    return n;
  }

  /** Returns an erased node's record to the free list. */
  private freeNode(n: AvlNode): void {
    this.setLeft(n, NIL);
    this.setRight(n, NIL);
    this.setHeight(n, 0);
    this.setParent(n, this.free);
    this.free = n;
  }

  /** Doubles the records; a subclass grows its per-record arrays to `records` with them. */
  protected grow(): void {
    const i32 = new Int32Array(this.i32.length * 2);
    i32.set(this.i32);
    this.i32 = i32;
  }

  /** How many records the link array holds (the size a subclass's per-record arrays need). */
  protected get capacity(): number {
    return this.i32.length / STRIDE;
  }

  /**
   * Recomputes the node-local data that depends on the children: the height, plus whatever a
   * subclass augments (the kernel's `rb_augment_callbacks.propagate` for one node).
   */
  protected pull(n: AvlNode): void {
    this.setHeight(n, 1 + Math.max(this.heightOf(this.left(n)), this.heightOf(this.right(n))));
  }

  /**
   * Links `n` as a new leaf under `parent` (NIL: the tree is empty) on the given side, then
   * restores the balance on the way up, stopping where a subtree is as tall as it was before
   * (at the latest after the one rotation an AVL insert needs). The caller has already brought
   * the augmented data of every ancestor up to date on its way down, as interval_tree_insert()
   * does with `__subtree_last`: above the stop nothing changes. Walking to the root, as erase
   * must, made a 32764-slot fill 2.4x as costly per slot as a 509-slot one (npm run bench).
   * Mirrors: rb_link_node() + rb_insert_augmented()
   */
  protected linkLeaf(n: AvlNode, parent: AvlNode, asLeftChild: boolean): void {
    this.setParent(n, parent);
    if (parent === NIL) this.root = n;
    else if (asLeftChild) this.setLeft(parent, n);
    else this.setRight(parent, n);
    this.size++;
    for (let cur = parent; cur !== NIL; cur = this.parent(cur)) {
      const before = this.heightOf(cur);
      this.pull(cur);
      const bf = this.heightOf(this.left(cur)) - this.heightOf(this.right(cur));
      // After an insert, one single or double rotation gives the subtree its old height back.
      // Stryker disable next-line EqualityOperator: an extra rotation at a difference of 1 keeps the balance (stress-tested, not proved)
      if (bf > 1 || bf < -1) {
        this.rotateAt(cur, bf);
        return;
      }
      if (this.heightOf(cur) === before) return;
    }
  }

  /**
   * Unlinks `z`, rebalances and frees its record. The in-order successor takes z's place by
   * relinking, so every other node keeps its payload. Mirrors: rb_erase()
   */
  eraseNode(z: AvlNode): void {
    let from: AvlNode;
    const zl = this.left(z);
    const zr = this.right(z);
    if (zl === NIL || zr === NIL) {
      this.transplant(z, zl !== NIL ? zl : zr);
      from = this.parent(z);
    } else {
      let y = zr;
      while (this.left(y) !== NIL) y = this.left(y);
      if (this.parent(y) !== z) {
        from = this.parent(y);
        this.transplant(y, this.right(y));
        this.setRight(y, zr);
        this.setParent(zr, y);
      } else {
        from = y;
      }
      this.transplant(z, y);
      this.setLeft(y, zl);
      this.setParent(zl, y);
      this.setHeight(y, this.heightOf(z));
    }
    this.size--;
    this.freeNode(z);
    this.rebalanceFrom(from);
  }

  /** Mirrors: rb_first() */
  first(): AvlNode {
    let n = this.root;
    if (n === NIL) return NIL;
    while (this.left(n) !== NIL) n = this.left(n);
    return n;
  }

  /** Mirrors: rb_last() */
  last(): AvlNode {
    let n = this.root;
    if (n === NIL) return NIL;
    while (this.right(n) !== NIL) n = this.right(n);
    return n;
  }

  /** In-order successor. Mirrors: rb_next() */
  next(n: AvlNode): AvlNode {
    if (this.right(n) !== NIL) {
      let m = this.right(n);
      while (this.left(m) !== NIL) m = this.left(m);
      return m;
    }
    let child = n;
    let p = this.parent(n);
    while (p !== NIL && this.right(p) === child) {
      child = p;
      p = this.parent(p);
    }
    return p;
  }

  /** In-order predecessor. Mirrors: rb_prev() */
  prev(n: AvlNode): AvlNode {
    if (this.left(n) !== NIL) {
      let m = this.left(n);
      while (this.right(m) !== NIL) m = this.right(m);
      return m;
    }
    let child = n;
    let p = this.parent(n);
    while (p !== NIL && this.left(p) === child) {
      child = p;
      p = this.parent(p);
    }
    return p;
  }

  /** The height of the tree (0 when empty). */
  height(): number {
    return this.heightOf(this.root);
  }

  private replaceChild(p: AvlNode, old: AvlNode, neu: AvlNode): void {
    if (p === NIL) this.root = neu;
    else if (this.left(p) === old) this.setLeft(p, neu);
    else this.setRight(p, neu);
  }

  /** Puts `v` where `u` was in u's parent (u's own children are the caller's business). */
  private transplant(u: AvlNode, v: AvlNode): void {
    this.replaceChild(this.parent(u), u, v);
    if (v !== NIL) this.setParent(v, this.parent(u));
  }

  private rotateLeft(x: AvlNode): AvlNode {
    const y = this.right(x);
    const b = this.left(y);
    this.setRight(x, b);
    if (b !== NIL) this.setParent(b, x);
    this.setParent(y, this.parent(x));
    this.replaceChild(this.parent(x), x, y);
    this.setLeft(y, x);
    this.setParent(x, y);
    this.pull(x);
    this.pull(y);
    return y;
  }

  private rotateRight(x: AvlNode): AvlNode {
    const y = this.left(x);
    const b = this.right(y);
    this.setLeft(x, b);
    if (b !== NIL) this.setParent(b, x);
    this.setParent(y, this.parent(x));
    this.replaceChild(this.parent(x), x, y);
    this.setRight(y, x);
    this.setParent(x, y);
    this.pull(x);
    this.pull(y);
    return y;
  }

  /**
   * Walks from `n` to the root, refreshing `pull()` data and restoring the AVL balance, after
   * an erase. It always reaches the root (O(log n)) because augmented data must propagate all
   * the way (a removed interval may have been the subtree's last).
   */
  private rebalanceFrom(n: AvlNode): void {
    let cur = n;
    while (cur !== NIL) {
      this.pull(cur);
      const bf = this.heightOf(this.left(cur)) - this.heightOf(this.right(cur));
      // Stryker disable next-line EqualityOperator: an extra rotation at a difference of 1 keeps the balance (stress-tested, not proved)
      if (bf > 1 || bf < -1) cur = this.rotateAt(cur, bf);
      cur = this.parent(cur);
    }
  }

  /**
   * The rotation that rebalances `cur`, whose subtrees differ in height by `bf` (2 or -2): a
   * single one, or a double one where the taller child leans the other way.
   * @returns the root of the rotated subtree.
   */
  private rotateAt(cur: AvlNode, bf: number): AvlNode {
    if (bf > 1) {
      const l = this.left(cur);
      // Stryker disable next-line EqualityOperator: an extra rotation at a difference of 1 keeps the balance (stress-tested, not proved)
      if (this.heightOf(this.left(l)) < this.heightOf(this.right(l))) this.rotateLeft(l);
      return this.rotateRight(cur);
    }
    const r = this.right(cur);
    // Stryker disable next-line EqualityOperator: an extra rotation at a difference of 1 keeps the balance (stress-tested, not proved)
    if (this.heightOf(this.right(r)) < this.heightOf(this.left(r))) this.rotateRight(r);
    return this.rotateLeft(cur);
  }
}

/** The AVL height bound for n nodes: h < 1.4405 * log2(n + 2) - 0.3277. */
export function avlHeightBound(n: number): number {
  return 1.4405 * Math.log2(n + 2) - 0.3277;
}

/**
 * Checks the structural invariant of the block comment above (links, heights, balance, the
 * size) and returns the in-order node list. Throws Error on a violation. For tests; O(n).
 * The height bound is not checked here: it follows from the balance rule (tests assert it).
 */
export function checkAvl(tree: AvlTree): AvlNode[] {
  const out: AvlNode[] = [];
  const walk = (n: AvlNode, parent: AvlNode): number => {
    if (n === NIL) return 0;
    if (tree.parent(n) !== parent) throw new Error('broken parent link');
    const hl = walk(tree.left(n), n);
    out.push(n);
    const hr = walk(tree.right(n), n);
    if (Math.abs(hl - hr) > 1) throw new Error(`unbalanced node: ${hl} vs ${hr}`);
    const hn = 1 + Math.max(hl, hr);
    if (tree.heightOf(n) !== hn) throw new Error(`stale height ${tree.heightOf(n)}, expected ${hn}`);
    return hn;
  };
  walk(tree.root, NIL);
  if (out.length !== tree.size) throw new Error(`size ${tree.size}, counted ${out.length}`);
  return out;
}
