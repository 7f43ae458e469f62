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
/** The first chunk's first size: it doubles up to CHUNK, so a set of a few slots holds a few entries. */
const FIRST = 16;

export class ChunkedArray<T> {
  private readonly chunks: T[][] = [];
  /** Entries held: every chunk's length (the first one alone may be shorter than CHUNK). */
  private capacity = 0;

  /** `fill`: the value of every entry never set. */
  constructor(private readonly fill: T) {}

  /** The entry at `i` (`fill` if it was never set). */
  get(i: number): T {
    // Any other number (a fraction, a negative or huge id from a caller) is no entry, as in a
    // plain array; inside the held chunks the shift and the mask are exact.
    if (!(i >= 0 && i < this.capacity && Number.isInteger(i))) return this.fill;
    return this.chunks[i >>> SHIFT]![i & MASK]!;
  }

  set(i: number, v: T): void {
    if (!(i >= 0 && i <= 0x7fff_ffff && Number.isInteger(i))) throw new RangeError(`chunked array: index ${i}`);
    if (i >= this.capacity) this.grow(i);
    this.chunks[i >>> SHIFT]![i & MASK] = v;
  }

  /**
   * Holds index `i`. The first chunk grows by doubling (copying at most CHUNK entries in all):
   * a fresh VM's sets had four full chunks each, 4096 entries filled per chunk before its first
   * slot, which made a 10-slot setup cost twice a 509-slot one per create (npm run bench).
   */
  private grow(i: number): void {
    if (this.capacity < CHUNK) {
      let n = Math.max(FIRST, this.capacity * 2);
      while (n <= i && n < CHUNK) n *= 2;
      const first = new Array<T>(n).fill(this.fill);
      const old = this.chunks[0];
      for (let j = 0; j < this.capacity; j++) first[j] = old![j]!;
      this.chunks[0] = first;
      this.capacity = n;
    }
    while (this.capacity <= i) {
      this.chunks.push(new Array<T>(CHUNK).fill(this.fill));
      this.capacity += CHUNK;
    }
  }
}
