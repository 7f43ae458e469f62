/**
 * The ordered structure under the model's state: sorted-btree's copy-on-write B+ tree.
 *
 * The model reads a tree and updates it only through `with()` and `without()`, which clone the
 * tree in O(1) and copy the O(log n) nodes on the path they change: every tree the model has
 * handed out stays valid and unchanged, as the immutable state requires.
 */
import { createRequire } from 'node:module';
import type btree from 'sorted-btree';
import type * as sortedBtree from 'sorted-btree';

/**
 * A persistent sorted map (sorted-btree's copy-on-write B+ tree): its reads, O(log n) each, and
 * `with`/`without`, which return a new map. No method that changes a map in place is in the type.
 */
export type SortedMap<K, V> = Pick<
  sortedBtree.default<K, V>,
  'size' | 'get' | 'getPairOrNextLower' | 'nextLowerPair' | 'nextHigherPair' | 'getRange' | 'valuesArray' | 'with' | 'without'
>;

// sorted-btree is CommonJS. Loaded with require(): an ESM import of a CommonJS module makes Node
// parse it for its export names (cjs-module-lexer), about 50 ms of every CLI run's start.
const BTree = (createRequire(import.meta.url)('sorted-btree') as typeof btree).default;

function compareBigint(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareNumber(a: number, b: number): number {
  return a - b;
}

/** An empty map keyed by a bigint (a gfn). */
export function emptyBigintMap<V>(): SortedMap<bigint, V> {
  return new BTree<bigint, V>(undefined, compareBigint);
}

/** An empty map keyed by a number (a slot id). */
export function emptyNumberMap<V>(): SortedMap<number, V> {
  return new BTree<number, V>(undefined, compareNumber);
}
