/**
 * A guest_memfd's bound ranges for the legacy design: 5.10 has no guest_memfd, so this keeps
 * them the way 5.10 keeps everything, in an unsorted list that every question scans.
 */
import type { BindingStore } from '../internal/vm-ioctls.js';

export class BindingList implements BindingStore {
  private readonly ranges: { start: bigint; end: bigint }[] = [];

  intersects(pgoff: bigint, npages: bigint): boolean {
    const end = pgoff + npages;
    return this.ranges.some((r) => r.start < end && pgoff < r.end);
  }

  bind(pgoff: bigint, npages: bigint): void {
    this.ranges.push({ start: pgoff, end: pgoff + npages });
  }

  unbind(pgoff: bigint): void {
    const i = this.ranges.findIndex((r) => r.start === pgoff);
    if (i < 0) throw new RangeError(`no binding starts at file page ${pgoff}`);
    this.ranges.splice(i, 1);
  }
}
