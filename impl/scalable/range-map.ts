/**
 * An ordered map of disjoint half-open ranges `[start, end)`, as the kernel keeps a
 * guest_memfd's bindings in an xarray with multi-index entries (`xa_store_range()`,
 * `xa_find()`): sorted starts, so a lookup is a binary search.
 */
import type { BindingStore } from '../internal/vm-ioctls.js';

export class RangeMap implements BindingStore {
  private readonly starts: bigint[] = [];
  private readonly ends: bigint[] = [];

  /** The index of the first range starting at or after `x`. */
  private lowerBound(x: bigint): number {
    let lo = 0;
    let hi = this.starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.starts[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Mirrors: xa_find(&gmem->bindings, &start, end - 1, XA_PRESENT) */
  intersects(pgoff: bigint, npages: bigint): boolean {
    const end = pgoff + npages;
    const i = this.lowerBound(end);
    // Ranges are disjoint, so only the last one starting before `end` can reach back to `pgoff`.
    return i > 0 && this.ends[i - 1]! > pgoff;
  }

  /** Mirrors: xa_store_range() */
  bind(pgoff: bigint, npages: bigint): void {
    const i = this.lowerBound(pgoff);
    this.starts.splice(i, 0, pgoff);
    this.ends.splice(i, 0, pgoff + npages);
  }

  /** Mirrors: xa_store_range(..., NULL) in kvm_gmem_unbind() */
  unbind(pgoff: bigint): void {
    const i = this.lowerBound(pgoff);
    if (this.starts[i] !== pgoff) throw new RangeError(`no binding starts at file page ${pgoff}`);
    this.starts.splice(i, 1);
    this.ends.splice(i, 1);
  }
}
