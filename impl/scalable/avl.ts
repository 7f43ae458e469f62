/**
 * A deterministic AVL tree with parent links: the balanced-tree core under the gfn tree and
 * the hva interval tree. It stands in for the kernel's rb-tree (lib/rbtree.c): the same
 * operations (link a leaf and rebalance, erase a node, rb_first/rb_last/rb_next/rb_prev) and
 * the same augmentation hook (rb_augment_callbacks), with an AVL balance rule instead of
 * colours.
 *
 * Nodes are erased by identity, never by copying a payload from one node to another: callers
 * keep references to their nodes (a memslot set's id hash points at them, like the kernel's
 * `container_of(&slot->gfn_node[idx])`), so a node must stay the node of its payload.
 *
 * Invariant (checked by `checkAvl` in the unit tests):
 *   - every child's `parent` is the node that links it, the root's `parent` is null;
 *   - `height` = 1 + max(height(left), height(right)), height(null) = 0;
 *   - |height(left) - height(right)| <= 1 at every node, so a tree of n nodes has height
 *     below 1.4405 * log2(n + 2) - 0.3277 and every descent is O(log n);
 *   - the ordering rule of the subclass (strict for the gfn tree, duplicates to the right for
 *     the hva tree) holds for an in-order walk;
 *   - `pull()` data (the interval tree's subtree max) is up to date at every node.
 */

export abstract class AvlNode<N extends AvlNode<N>> {
  left: N | null = null;
  right: N | null = null;
  parent: N | null = null;
  height = 1;
}

function h<N extends AvlNode<N>>(n: N | null): number {
  return n === null ? 0 : n.height;
}

export abstract class AvlTree<N extends AvlNode<N>> {
  root: N | null = null;
  size = 0;

  /**
   * Recomputes the node-local data that depends on the children: the height, plus whatever a
   * subclass augments (the kernel's `rb_augment_callbacks.propagate` for one node).
   */
  protected pull(n: N): void {
    n.height = 1 + Math.max(h(n.left), h(n.right));
  }

  /**
   * Links `n` as a new leaf under `parent` (null: the tree is empty) on the given side, then
   * rebalances up to the root. Mirrors: rb_link_node() + rb_insert_color()
   */
  protected linkLeaf(n: N, parent: N | null, asLeftChild: boolean): void {
    n.left = null;
    n.right = null;
    n.height = 1;
    n.parent = parent;
    if (parent === null) this.root = n;
    else if (asLeftChild) parent.left = n;
    else parent.right = n;
    this.size++;
    this.rebalanceFrom(n);
  }

  /**
   * Unlinks `z` and rebalances. The in-order successor takes z's place by relinking, so every
   * other node keeps its payload. Mirrors: rb_erase()
   */
  eraseNode(z: N): void {
    let from: N | null;
    if (z.left === null || z.right === null) {
      const child = z.left ?? z.right;
      this.transplant(z, child);
      from = z.parent;
    } else {
      let y = z.right;
      while (y.left !== null) y = y.left;
      if (y.parent !== z) {
        from = y.parent;
        this.transplant(y, y.right);
        y.right = z.right;
        y.right.parent = y;
      } else {
        from = y;
      }
      this.transplant(z, y);
      y.left = z.left;
      y.left.parent = y;
      y.height = z.height;
    }
    z.left = null;
    z.right = null;
    z.parent = null;
    this.size--;
    this.rebalanceFrom(from);
  }

  /** Mirrors: rb_first() */
  first(): N | null {
    let n = this.root;
    if (n === null) return null;
    while (n.left !== null) n = n.left;
    return n;
  }

  /** Mirrors: rb_last() */
  last(): N | null {
    let n = this.root;
    if (n === null) return null;
    while (n.right !== null) n = n.right;
    return n;
  }

  /** In-order successor. Mirrors: rb_next() */
  next(n: N): N | null {
    if (n.right !== null) {
      let m = n.right;
      while (m.left !== null) m = m.left;
      return m;
    }
    let child = n;
    let p = n.parent;
    while (p !== null && p.right === child) {
      child = p;
      p = p.parent;
    }
    return p;
  }

  /** In-order predecessor. Mirrors: rb_prev() */
  prev(n: N): N | null {
    if (n.left !== null) {
      let m = n.left;
      while (m.right !== null) m = m.right;
      return m;
    }
    let child = n;
    let p = n.parent;
    while (p !== null && p.left === child) {
      child = p;
      p = p.parent;
    }
    return p;
  }

  /** The height of the tree (0 when empty). */
  height(): number {
    return h(this.root);
  }

  private replaceChild(p: N | null, old: N, neu: N | null): void {
    if (p === null) this.root = neu;
    else if (p.left === old) p.left = neu;
    else p.right = neu;
  }

  /** Puts `v` where `u` was in u's parent (u's own children are the caller's business). */
  private transplant(u: N, v: N | null): void {
    this.replaceChild(u.parent, u, v);
    if (v !== null) v.parent = u.parent;
  }

  private rotateLeft(x: N): N {
    const y = x.right!;
    x.right = y.left;
    if (y.left !== null) y.left.parent = x;
    y.parent = x.parent;
    this.replaceChild(x.parent, x, y);
    y.left = x;
    x.parent = y;
    this.pull(x);
    this.pull(y);
    return y;
  }

  private rotateRight(x: N): N {
    const y = x.left!;
    x.left = y.right;
    if (y.right !== null) y.right.parent = x;
    y.parent = x.parent;
    this.replaceChild(x.parent, x, y);
    y.right = x;
    x.parent = y;
    this.pull(x);
    this.pull(y);
    return y;
  }

  /**
   * Walks from `n` to the root, refreshing `pull()` data and restoring the AVL balance. It
   * always reaches the root (O(log n)) because augmented data must propagate all the way.
   */
  private rebalanceFrom(n: N | null): void {
    let cur = n;
    while (cur !== null) {
      this.pull(cur);
      const bf = h(cur.left) - h(cur.right);
      // Stryker disable next-line EqualityOperator: an extra rotation at a difference of 1 keeps the balance (stress-tested, not proved)
      if (bf > 1) {
        const l = cur.left!;
        // Stryker disable next-line EqualityOperator: an extra rotation at a difference of 1 keeps the balance (stress-tested, not proved)
        if (h(l.left) < h(l.right)) this.rotateLeft(l);
        cur = this.rotateRight(cur);
        // Stryker disable next-line EqualityOperator: an extra rotation at a difference of 1 keeps the balance (stress-tested, not proved)
      } else if (bf < -1) {
        const r = cur.right!;
        // Stryker disable next-line EqualityOperator: an extra rotation at a difference of 1 keeps the balance (stress-tested, not proved)
        if (h(r.right) < h(r.left)) this.rotateRight(r);
        cur = this.rotateLeft(cur);
      }
      cur = cur.parent;
    }
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
export function checkAvl<N extends AvlNode<N>>(tree: AvlTree<N>): N[] {
  const out: N[] = [];
  const walk = (n: N | null, parent: N | null): number => {
    if (n === null) return 0;
    if (n.parent !== parent) throw new Error('broken parent link');
    const hl = walk(n.left, n);
    out.push(n);
    const hr = walk(n.right, n);
    if (Math.abs(hl - hr) > 1) throw new Error(`unbalanced node: ${hl} vs ${hr}`);
    const hn = 1 + Math.max(hl, hr);
    if (n.height !== hn) throw new Error(`stale height ${n.height}, expected ${hn}`);
    return hn;
  };
  walk(tree.root, null);
  if (out.length !== tree.size) throw new Error(`size ${tree.size}, counted ${out.length}`);
  return out;
}
