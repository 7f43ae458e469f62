/**
 * The gfn tree of one memslot set: `struct kvm_memslots.gfn_tree` (include/linux/kvm_host.h).
 *
 * The kernel's gfn_tree is an rb-tree. Here it is a B+ tree of the same slots in the same
 * order, with the same operations (insert, erase, replace in place, the search_memslots()
 * descent, the range iterator), because a lookup among 32764 slots is bound by memory: a
 * binary tree's descent makes one dependent cache miss per level (15 at 32764 slots), a node
 * of up to B = 32 keys read in a row makes one per level (4 at 32764 slots). The nodes are
 * records in a few typed arrays, the keys are GfnNum (../internal/gfn-num.ts: exact), so a
 * descent reads neither a slot object nor a bigint, and a CREATE allocates no node objects.
 */
import { InvariantError, hex, type Gfn } from '../../model/types.js';
import { gfnSearchKey, toGfnNum, type GfnNum } from '../internal/gfn-num.js';
import { ChunkedArray } from './chunked.js';

/** What the gfn tree needs to know about a slot. */
export interface GfnRange {
  readonly baseGfn: Gfn;
  readonly npages: bigint;
}

/**
 * A position in the tree: one slot's entry, `leaf * B + index`. It stays valid until the
 * tree next changes (entries move when nodes split or merge), so unlike the kernel's
 * `gfn_node` it is not kept across requests: erase and replace find their slot by baseGfn.
 */
export type GfnEntry = number;
/** No entry (0: node 0 is never used). */
export const NO_ENTRY: GfnEntry = 0;

/** Entries (leaf) or children (inner node) per node. */
const B = 32;
const LOG2_B = 5;
/** Below this many entries or children a non-root node takes from or merges with a sibling. */
const MIN = B / 2;
const NIL = 0;
const INITIAL_NODES = 4;

/*
 * Invariant of the gfn tree ([MS-INV-02], [MS-INV-01] via the id hash that holds its slots):
 *
 *   An in-order walk (the leaves left to right, each leaf's entries in order) yields the
 *   slots of the set strictly ascending by baseGfn. Two entries with the same baseGfn cannot
 *   exist: inserting one is a bug (the kernel's BUG() in kvm_insert_gfn_node()) and throws
 *   InvariantError('MS-INV-02'). Since the overlap check ([MS-OVL-01]) runs before every
 *   CREATE and MOVE, the gfn ranges are also pairwise disjoint, so ascending baseGfn is
 *   ascending range, which is what search_memslots() and the range iterator rely on.
 *
 *   Shape (a B+ tree): every leaf is at depth `levels`; every node holds 1 .. B - 1 entries
 *   or children (B only while it splits), every node but the root at least MIN, so the tree has at most
 *   1 + log_MIN(n) levels and every descent is O(log n). An entry keeps its slot's baseGfn
 *   and end (baseGfn + npages) as GfnNum, equal to the slot's bigints. An inner node keeps,
 *   for each child i, a key `min[i]`: no key in child i is below min[i] (i > 0), and every
 *   key in child i is below min[i + 1]; the descent takes the last child whose min is at or
 *   below the gfn. The leaves are linked in order (`next`, `prev`: the kernel's rb_next()
 *   and rb_prev()).
 */
export class GfnTree<T extends GfnRange> {
  /** Entries in the tree. */
  size = 0;
  /** Levels of nodes: 0 for an empty tree, 1 when the root is a leaf. */
  levels = 0;
  private root = NIL;
  /** Node k's keys (leaf: baseGfn; inner: min of each child) at k * 2B, a leaf's ends at k * 2B + B. */
  private f64 = new Float64Array(INITIAL_NODES * 2 * B);
  /** Inner node k's children at k * B. */
  private child = new Int32Array(INITIAL_NODES * B);
  /** Entries or children of node k. */
  private count = new Int32Array(INITIAL_NODES);
  /** The leaf list (and, for a free node, the free list). */
  private next = new Int32Array(INITIAL_NODES);
  private prev = new Int32Array(INITIAL_NODES);
  /**
   * Leaf k's slots at k * B, in chunks (./chunked.ts): a plain array grown by the splits of a
   * fill reallocated and copied itself, as a large object, every time it grew.
   */
  private readonly slots = new ChunkedArray<T | undefined>(undefined);
  /** Nodes handed out so far, node 0 (NIL) included. */
  private used = 1;
  private free = NIL;

  // ---------------------------------------------------------------------------------------
  // Entries

  /** The slot of `e`. */
  slotOf(e: GfnEntry): T {
    const s = this.slots.get(e);
    if (s === undefined) throw new InvariantError('MS-INV-02', `gfn tree: entry ${e} holds no slot`);
    return s;
  }

  /** The slot's baseGfn, as kept in the entry. */
  baseOf(e: GfnEntry): GfnNum {
    return this.f64[(e >> LOG2_B) * 2 * B + (e & (B - 1))]! as GfnNum;
  }

  /** The slot's end (baseGfn + npages), as kept in the entry. */
  endOf(e: GfnEntry): GfnNum {
    return this.f64[(e >> LOG2_B) * 2 * B + B + (e & (B - 1))]! as GfnNum;
  }

  /** The entry after `e`, or NO_ENTRY. Mirrors: rb_next() */
  nextEntry(e: GfnEntry): GfnEntry {
    const leaf = e >> LOG2_B;
    if ((e & (B - 1)) + 1 < this.count[leaf]!) return e + 1;
    const n = this.next[leaf]!;
    return n === NIL ? NO_ENTRY : n * B;
  }

  /** The entry before `e`, or NO_ENTRY. Mirrors: rb_prev() */
  prevEntry(e: GfnEntry): GfnEntry {
    if ((e & (B - 1)) > 0) return e - 1;
    const p = this.prev[e >> LOG2_B]!;
    return p === NIL ? NO_ENTRY : p * B + this.count[p]! - 1;
  }

  /** The first entry, or NO_ENTRY. Mirrors: rb_first() */
  firstEntry(): GfnEntry {
    if (this.root === NIL) return NO_ENTRY;
    let k = this.root;
    for (let h = this.levels; h > 1; h--) k = this.child[k * B]!;
    return k * B;
  }

  // ---------------------------------------------------------------------------------------
  // Lookups

  /**
   * The descent of search_memslots(): the entry of the slot containing `gfn`; on a miss, with
   * `approx`, the entry where the descent ended, which borders the hole: the nearest slot
   * below `gfn` in the leaf reached, or, when the leaf has none below, its first slot (the
   * nearest above). Without approx, or in an empty tree, NO_ENTRY.
   * Mirrors: search_memslots()
   */
  search(gfn: Gfn, approx: boolean): GfnEntry {
    return this.searchKey(gfnSearchKey(gfn), approx);
  }

  /** search() for a gfn already made a search key (gfnSearchKey()). */
  searchKey(g: number, approx: boolean): GfnEntry {
    if (this.root === NIL) return NO_ENTRY;
    const f64 = this.f64;
    const count = this.count;
    const child = this.child;
    let k = this.root;
    for (let h = this.levels; h > 1; h--) {
      const o = k * 2 * B;
      const c = count[k]!;
      let i = 1;
      while (i < c && f64[o + i]! <= g) i++;
      k = child[k * B + i - 1]!;
    }
    const o = k * 2 * B;
    const c = count[k]!;
    let i = 0;
    while (i < c && f64[o + i]! <= g) i++;
    // Entry i - 1 is the last with baseGfn <= gfn in this leaf; entry i the first above.
    if (i > 0 && g < f64[o + B + i - 1]!) return k * B + i - 1;
    if (!approx) return NO_ENTRY;
    return i > 0 ? k * B + i - 1 : k * B;
  }

  /** The slot containing `gfn` (or, with `approx`, bordering its hole), or null. */
  searchSlot(gfn: Gfn, approx: boolean): T | null {
    const e = this.search(gfn, approx);
    return e === NO_ENTRY ? null : this.slotOf(e);
  }

  /** The last entry whose baseGfn is at or below `gfn`, or NO_ENTRY. */
  floor(gfn: Gfn): GfnEntry {
    if (this.root === NIL) return NO_ENTRY;
    const g = gfnSearchKey(gfn);
    let k = this.root;
    for (let h = this.levels; h > 1; h--) {
      k = this.child[k * B + this.route(k, g)]!;
    }
    const i = this.above(k, 0, g);
    // i = 0: the leaf's keys are all above gfn (its min is a lower bound only); the last key
    // at or below gfn, if any, ends the previous leaf.
    return i > 0 ? k * B + i - 1 : this.prevEntry(k * B);
  }

  /**
   * The first entry that can intersect `[start, ...)`: the last slot starting at or below
   * start, or the first slot when there is none, skipped when it ends at or before start.
   * Mirrors: kvm_memslot_iter_start() (the upper bound of start, then rb_prev())
   */
  iterStart(start: Gfn): GfnEntry {
    let e = this.floor(start);
    if (e === NO_ENTRY) return this.firstEntry();
    if (this.endOf(e) <= gfnSearchKey(start)) e = this.nextEntry(e);
    return e;
  }

  /**
   * Every slot intersecting the half-open `[start, end)`, ascending by baseGfn.
   * Mirrors: kvm_for_each_memslot_in_gfn_range()
   */
  rangeSlots(start: Gfn, end: Gfn): T[] {
    const out: T[] = [];
    const e = gfnSearchKey(end);
    for (let it = this.iterStart(start); it !== NO_ENTRY && this.baseOf(it) < e; it = this.nextEntry(it)) out.push(this.slotOf(it));
    return out;
  }

  /** Every slot, ascending by baseGfn. O(n). */
  inOrder(): T[] {
    const out: T[] = [];
    for (let e = this.firstEntry(); e !== NO_ENTRY; e = this.nextEntry(e)) out.push(this.slotOf(e));
    return out;
  }

  // ---------------------------------------------------------------------------------------
  // Updates

  /**
   * Adds `slot`; its baseGfn must not be in the tree yet. Mirrors: kvm_insert_gfn_node()
   */
  insert(slot: T): void {
    const key = toGfnNum(slot.baseGfn);
    const end = toGfnNum(slot.baseGfn + slot.npages);
    if (this.root === NIL) {
      this.root = this.allocNode();
      this.levels = 1;
    }
    const split = this.insertInto(this.root, this.levels, key, end, slot);
    if (split !== NIL) {
      // The root split: a new root above the two halves.
      const r = this.allocNode();
      this.count[r] = 2;
      this.child[r * B] = this.root;
      this.child[r * B + 1] = split;
      this.f64[r * 2 * B] = this.f64[this.root * 2 * B]!;
      this.f64[r * 2 * B + 1] = this.f64[split * 2 * B]!;
      this.root = r;
      this.levels++;
    }
    this.size++;
  }

  /**
   * Erases `slot`, found by its baseGfn. Mirrors: kvm_erase_gfn_node()
   */
  erase(slot: T): void {
    const key = this.keyOf(slot);
    this.eraseFrom(this.root, this.levels, key, slot);
    this.size--;
    // An inner root with one child gives way to it; an empty root leaves an empty tree.
    while (this.levels > 1 && this.count[this.root] === 1) {
      const only = this.child[this.root * B]!;
      this.freeNode(this.root);
      this.root = only;
      this.levels--;
    }
    if (this.levels === 1 && this.count[this.root] === 0) {
      this.freeNode(this.root);
      this.root = NIL;
      this.levels = 0;
    }
  }

  /**
   * Switches `old`'s entry to `slot`, which has the same baseGfn: the position in the tree
   * depends on baseGfn only. Mirrors: kvm_replace_gfn_node() (rb_replace_node())
   */
  replace(old: T, slot: T): void {
    if (old.baseGfn !== slot.baseGfn) {
      throw new InvariantError('MS-INV-02', `gfn tree: replace ${hex(old.baseGfn)} by ${hex(slot.baseGfn)}`);
    }
    const e = this.entryOf(old);
    this.slots.set(e, slot);
    this.f64[(e >> LOG2_B) * 2 * B + B + (e & (B - 1))] = toGfnNum(slot.baseGfn + slot.npages);
  }

  /** The entry of `slot` (by baseGfn, then identity); throws when the tree does not hold it. */
  entryOf(slot: T): GfnEntry {
    const e = this.floor(slot.baseGfn);
    if (e === NO_ENTRY || this.slots.get(e) !== slot) {
      throw new InvariantError('MS-INV-02', `gfn tree: no entry for the slot at ${hex(slot.baseGfn)}`);
    }
    return e;
  }

  private keyOf(slot: T): GfnNum {
    this.entryOf(slot);
    return toGfnNum(slot.baseGfn);
  }

  /** The child of inner node k that a key belongs in. */
  private route(k: number, key: number): number {
    return this.above(k, 1, key) - 1;
  }

  /**
   * The first position from `lo` on in node k whose key is above `key` (the count when none
   * is), by binary search. The updates and floor() use this, not the linear scan of
   * searchKey(): a fill adds ascending baseGfns, so every descent of a CREATE (the overlap
   * check and the insert into each set) goes to the last child at every level, which a scan
   * reaches only after reading all of a node's keys, at every one of the extra levels of a
   * large set. Here the branches go the same way for every ascending key, so they predict
   * well; searchKey()'s random lookups are better served by the scan's early exit.
   */
  private above(k: number, lo: number, key: number): number {
    const o = k * 2 * B;
    let hi = this.count[k]!;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.f64[o + mid]! <= key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The first position in leaf k whose key is at or above `key` (the count when none is). */
  private atOrAbove(k: number, key: number): number {
    const o = k * 2 * B;
    let lo = 0;
    let hi = this.count[k]!;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.f64[o + mid]! < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Inserts into the subtree at `k` (of `h` levels); returns the new right sibling of `k` if
   * `k` split, else NIL.
   */
  private insertInto(k: number, h: number, key: GfnNum, end: GfnNum, slot: T): number {
    if (h === 1) {
      const c = this.count[k]!;
      const i = this.atOrAbove(k, key);
      if (i < c && this.f64[k * 2 * B + i] === key) {
        throw new InvariantError('MS-INV-02', `gfn tree: a second node with baseGfn ${hex(slot.baseGfn)}`);
      }
      this.openGap(k, i, true);
      this.f64[k * 2 * B + i] = key;
      this.f64[k * 2 * B + B + i] = end;
      this.slots.set(k * B + i, slot);
      return this.count[k]! > B - 1 ? this.split(k, true) : NIL;
    }
    const i = this.route(k, key);
    if (key < this.f64[k * 2 * B + i]!) this.f64[k * 2 * B + i] = key; // child 0's lower bound
    const sub = this.insertInto(this.child[k * B + i]!, h - 1, key, end, slot);
    if (sub === NIL) return NIL;
    this.openGap(k, i + 1, false);
    this.child[k * B + i + 1] = sub;
    this.f64[k * 2 * B + i + 1] = this.f64[sub * 2 * B]!;
    return this.count[k]! > B - 1 ? this.split(k, false) : NIL;
  }

  /** Shifts entries (or children) i.. of node k one place right and counts one more. */
  private openGap(k: number, i: number, leaf: boolean): void {
    const c = this.count[k]!;
    const o = k * 2 * B;
    this.f64.copyWithin(o + i + 1, o + i, o + c);
    if (leaf) {
      this.f64.copyWithin(o + B + i + 1, o + B + i, o + B + c);
      for (let j = c; j > i; j--) this.slots.set(k * B + j, this.slots.get(k * B + j - 1));
    } else {
      this.child.copyWithin(k * B + i + 1, k * B + i, k * B + c);
    }
    this.count[k] = c + 1;
  }

  /** Shifts entries (or children) i+1.. of node k one place left over i, counts one less. */
  private closeGap(k: number, i: number, leaf: boolean): void {
    const c = this.count[k]!;
    const o = k * 2 * B;
    this.f64.copyWithin(o + i, o + i + 1, o + c);
    if (leaf) {
      this.f64.copyWithin(o + B + i, o + B + i + 1, o + B + c);
      for (let j = i; j < c - 1; j++) this.slots.set(k * B + j, this.slots.get(k * B + j + 1));
      this.slots.set(k * B + c - 1, undefined);
    } else {
      this.child.copyWithin(k * B + i, k * B + i + 1, k * B + c);
    }
    this.count[k] = c - 1;
  }

  /**
   * Splits full node k (B entries or children) in halves: the upper half moves to a new
   * right sibling, which is returned.
   */
  private split(k: number, leaf: boolean): number {
    const r = this.allocNode();
    const c = this.count[k]!;
    const keep = c / 2;
    this.moveTail(k, keep, r, leaf);
    if (leaf) {
      const after = this.next[k]!;
      this.next[r] = after;
      this.prev[r] = k;
      this.next[k] = r;
      if (after !== NIL) this.prev[after] = r;
    }
    return r;
  }

  /** Moves the entries (or children) from index `from` of node k to the end of node r. */
  private moveTail(k: number, from: number, r: number, leaf: boolean): void {
    const c = this.count[k]!;
    const rc = this.count[r]!;
    const n = c - from;
    const ko = k * 2 * B;
    const ro = r * 2 * B;
    this.f64.copyWithin(ro + rc, ko + from, ko + c);
    if (leaf) {
      this.f64.copyWithin(ro + B + rc, ko + B + from, ko + B + c);
      for (let j = 0; j < n; j++) {
        this.slots.set(r * B + rc + j, this.slots.get(k * B + from + j));
        this.slots.set(k * B + from + j, undefined);
      }
    } else {
      this.child.copyWithin(r * B + rc, k * B + from, k * B + c);
    }
    this.count[k] = from;
    this.count[r] = rc + n;
  }

  /** Erases the entry of `slot` (baseGfn `key`) below node k of `h` levels. */
  private eraseFrom(k: number, h: number, key: GfnNum, slot: T): void {
    if (h === 1) {
      this.closeGap(k, this.atOrAbove(k, key), true);
      return;
    }
    const i = this.route(k, key);
    const ch = this.child[k * B + i]!;
    this.eraseFrom(ch, h - 1, key, slot);
    if (this.count[ch]! < MIN) this.refill(k, i, h - 1 === 1);
  }

  /**
   * Child i of inner node k fell below MIN: it merges with a neighbour when both fit in one
   * node, else takes one entry (or child) from it.
   */
  private refill(k: number, i: number, leaf: boolean): void {
    const c = this.count[k]!;
    if (c === 1) return; // the root's only child; erase() collapses the root
    // The pair (left, right) of adjacent children, one of them child i.
    const li = i > 0 ? i - 1 : i;
    const left = this.child[k * B + li]!;
    const right = this.child[k * B + li + 1]!;
    const lc = this.count[left]!;
    const rc = this.count[right]!;
    if (lc + rc < B) {
      this.moveTail(right, 0, left, leaf);
      if (leaf) {
        const after = this.next[right]!;
        this.next[left] = after;
        if (after !== NIL) this.prev[after] = left;
      }
      this.freeNode(right);
      this.closeGap(k, li + 1, false);
      return;
    }
    if (lc < rc) {
      // The right one's first moves to the end of the left one.
      this.moveOne(right, 0, left, lc, leaf);
      this.closeGap(right, 0, leaf);
      this.count[left] = lc + 1;
    } else {
      // The left one's last moves to the front of the right one.
      this.openGap(right, 0, leaf);
      this.moveOne(left, lc - 1, right, 0, leaf);
      this.count[left] = lc - 1;
      if (leaf) this.slots.set(left * B + lc - 1, undefined);
    }
    this.f64[k * 2 * B + li + 1] = this.f64[right * 2 * B]!;
  }

  /** Copies entry (or child) `from` of node a into slot `to` of node b. */
  private moveOne(a: number, from: number, b: number, to: number, leaf: boolean): void {
    this.f64[b * 2 * B + to] = this.f64[a * 2 * B + from]!;
    if (leaf) {
      this.f64[b * 2 * B + B + to] = this.f64[a * 2 * B + B + from]!;
      this.slots.set(b * B + to, this.slots.get(a * B + from));
    } else {
      this.child[b * B + to] = this.child[a * B + from]!;
    }
  }

  private allocNode(): number {
    let k = this.free;
    if (k !== NIL) {
      this.free = this.next[k]!;
    } else {
      if (this.used === this.count.length) this.grow();
      k = this.used++;
    }
    this.count[k] = 0;
    this.next[k] = NIL;
    this.prev[k] = NIL;
    return k;
  }

  private freeNode(k: number): void {
    this.count[k] = 0;
    this.prev[k] = NIL;
    this.next[k] = this.free;
    this.free = k;
  }

  private grow(): void {
    const nodes = this.count.length * 2;
    const f64 = new Float64Array(nodes * 2 * B);
    f64.set(this.f64);
    this.f64 = f64;
    const child = new Int32Array(nodes * B);
    child.set(this.child);
    this.child = child;
    for (const name of ['count', 'next', 'prev'] as const) {
      const a = new Int32Array(nodes);
      a.set(this[name]);
      this[name] = a;
    }
  }

  // ---------------------------------------------------------------------------------------
  // For tests

  /**
   * Checks the invariant above (order, keys, shape, separators, leaf links, size) and
   * returns the slots in order. Throws Error on a violation. O(n).
   */
  check(): T[] {
    const out: T[] = [];
    const leaves: number[] = [];
    const walk = (k: number, h: number, lo: number, hi: number): void => {
      const c = this.count[k]!;
      const keys = Array.from({ length: c }, (_, i) => this.f64[k * 2 * B + i]!);
      if (c < 1 || c > B - 1 || (k !== this.root && c < MIN)) throw new Error(`node ${k}: ${c} entries`);
      if (keys[0]! < lo) throw new Error(`node ${k}: min ${keys[0]} below ${lo}`);
      if (h === 1) {
        leaves.push(k);
        for (let i = 0; i < c; i++) {
          const s = this.slots.get(k * B + i);
          if (s === undefined) throw new Error(`leaf ${k}: entry ${i} holds no slot`);
          if (keys[i] !== Number(s.baseGfn) || this.f64[k * 2 * B + B + i] !== Number(s.baseGfn + s.npages)) {
            throw new Error(`leaf ${k}: entry ${i} keys out of step with its slot`);
          }
          if (keys[i]! < lo || keys[i]! >= hi) throw new Error(`leaf ${k}: key ${keys[i]} outside [${lo}, ${hi})`);
          out.push(s);
        }
        return;
      }
      for (let i = 0; i < c; i++) {
        const chi = i + 1 < c ? keys[i + 1]! : hi;
        if (i > 0 && !(keys[i - 1]! < keys[i]!)) throw new Error(`node ${k}: mins not ascending`);
        walk(this.child[k * B + i]!, h - 1, keys[i]!, chi);
      }
    };
    if (this.root !== NIL) walk(this.root, this.levels, -Infinity, Infinity);
    else if (this.levels !== 0) throw new Error(`empty tree with ${this.levels} levels`);
    for (let i = 1; i < out.length; i++) {
      if (!(out[i - 1]!.baseGfn < out[i]!.baseGfn)) throw new Error(`keys not ascending at ${i}`);
    }
    for (let j = 0; j < leaves.length; j++) {
      if (this.next[leaves[j]!] !== (leaves[j + 1] ?? NIL) || this.prev[leaves[j]!] !== (leaves[j - 1] ?? NIL)) {
        throw new Error(`leaf ${leaves[j]}: broken leaf links`);
      }
    }
    if (out.length !== this.size) throw new Error(`size ${this.size}, counted ${out.length}`);
    return out;
  }
}

/**
 * The most levels a gfn tree of n slots can have: the root has 2 or more children, every
 * other inner node MIN or more, every leaf MIN or more entries, so n >= 2 * MIN^(levels - 1).
 */
export function gfnTreeLevelBound(n: number): number {
  return n < 2 ? 1 : 1 + Math.log(n / 2) / Math.log(MIN);
}
