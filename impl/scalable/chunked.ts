/**
 * A growable array of values kept in fixed-size chunks: growing adds a chunk and never copies
 * or reallocates what is already held. The trees of a memslot set index their per-node data by
 * node handle, and a slot setup grows that data from nothing to 32764 entries. In one JS array
 * each growth past 128 KiB allocated a new large object (fresh pages, faulted in, and a copy):
 * a 32764-slot fill paid about 100 ns more per slot and array than a 509-slot one (npm run
 * bench). A chunk of 4096 entries stays an ordinary heap object, like the kernel's per-slot
 * nodes from its slab caches.
 */
const SHIFT = 12;
const CHUNK = 1 << SHIFT;
const MASK = CHUNK - 1;

export class ChunkedArray<T> {
  private readonly chunks: T[][] = [];

  /** `fill`: the value of every entry never set. */
  constructor(private readonly fill: T) {}

  /** The entry at `i` (`fill` if it was never set). */
  get(i: number): T {
    // Any other number (a fraction, a negative or huge id from a caller) is no entry, as in a
    // plain array; inside the held chunks the shift and the mask are exact.
    if (!(i >= 0 && i < this.chunks.length * CHUNK && Number.isInteger(i))) return this.fill;
    return this.chunks[i >>> SHIFT]![i & MASK]!;
  }

  set(i: number, v: T): void {
    if (!(i >= 0 && i <= 0x7fff_ffff && Number.isInteger(i))) throw new RangeError(`chunked array: index ${i}`);
    const k = i >>> SHIFT;
    while (this.chunks.length <= k) this.chunks.push(new Array<T>(CHUNK).fill(this.fill));
    this.chunks[k]![i & MASK] = v;
  }
}
