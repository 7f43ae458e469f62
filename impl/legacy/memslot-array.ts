/**
 * `struct kvm_memory_slot memslots[]` of a 5.10 `struct kvm_memslots`: slots held by value,
 * as fixed-size records in one contiguous buffer, so that kvm_dup_memslots() is what it is
 * in the kernel, a memcpy of `used_slots * sizeof(struct kvm_memory_slot)` bytes, and the
 * shifts of update_memslots() are memmoves of records.
 */
import type { Memslot } from '../../model/types.js';
import { makeMemslot } from '../internal/memslot.js';

/*
 * Record layout (48 bytes, 8-byte aligned):
 *
 *   bytes  0..7   base_gfn        u64
 *   bytes  8..15  npages          u64
 *   bytes 16..23  userspace_addr  u64
 *   bytes 24..27  dirty_bitmap    i32, the bitmap's identity number, -1 for NULL
 *   bytes 28..31  flags           u32
 *   bytes 32..33  id              u16
 *   bytes 34..35  as_id           u16
 *   bytes 36..39  gmem file      i32, the guest_memfd handle of the binding, -1 for none
 *   bytes 40..47  gmem pgoff     u64, the first file page of the binding
 *
 * Every u64 field is read and written as a bigint, as everywhere in this project: the O(n)
 * loops of the legacy design (the overlap scan, the array shifts) pay a BigInt per read,
 * which is part of this baseline's honest cost.
 */
const RECORD_BYTES = 48;
const W32 = RECORD_BYTES / 4;
const W64 = RECORD_BYTES / 8;
const W16 = RECORD_BYTES / 2;

export class MemslotArray {
  private readonly u64: BigUint64Array;
  private readonly i32: Int32Array;
  private readonly u32: Uint32Array;
  private readonly u16: Uint16Array;

  constructor(readonly capacity: number) {
    const buf = new ArrayBuffer(capacity * RECORD_BYTES);
    this.u64 = new BigUint64Array(buf);
    this.i32 = new Int32Array(buf);
    this.u32 = new Uint32Array(buf);
    this.u16 = new Uint16Array(buf);
  }

  /** A new array of `capacity` records whose first `count` are a byte copy of `src`'s. */
  static copyOf(src: MemslotArray, count: number, capacity: number): MemslotArray {
    const a = new MemslotArray(capacity);
    a.u32.set(src.u32.subarray(0, count * W32));
    return a;
  }

  baseGfn(i: number): bigint {
    return this.u64[i * W64]!;
  }

  npages(i: number): bigint {
    return this.u64[i * W64 + 1]!;
  }

  userspaceAddr(i: number): bigint {
    return this.u64[i * W64 + 2]!;
  }

  flags(i: number): number {
    return this.u32[i * W32 + 7]!;
  }

  id(i: number): number {
    return this.u16[i * W16 + 16]!;
  }

  setFlags(i: number, flags: number): void {
    this.u32[i * W32 + 7] = flags;
  }

  /** `mslots[i]` as a slot value. */
  get(i: number): Memslot {
    const bitmap = this.i32[i * W32 + 6]!;
    const file = this.i32[i * W32 + 9]!;
    return makeMemslot(
      {
        asId: this.u16[i * W16 + 17]!,
        id: this.id(i),
        baseGfn: this.baseGfn(i),
        npages: this.npages(i),
        flags: this.flags(i),
        userspaceAddr: this.userspaceAddr(i),
        gmem: file < 0 ? null : { file, pgoff: this.u64[i * W64 + 5]! },
      },
      bitmap < 0 ? null : bitmap,
    );
  }

  /** `mslots[i] = *slot` */
  set(i: number, s: Memslot): void {
    this.u64[i * W64] = s.baseGfn;
    this.u64[i * W64 + 1] = s.npages;
    this.u64[i * W64 + 2] = s.userspaceAddr;
    this.i32[i * W32 + 6] = s.dirtyBitmap ?? -1;
    this.u32[i * W32 + 7] = s.flags;
    this.u16[i * W16 + 16] = s.id;
    this.u16[i * W16 + 17] = s.asId;
    this.i32[i * W32 + 9] = s.gmem === null ? -1 : s.gmem.file;
    this.u64[i * W64 + 5] = s.gmem === null ? 0n : s.gmem.pgoff;
  }

  /**
   * Moves records `[src, src + count)` to `[dst, dst + count)` (a memmove: the ranges may
   * overlap). The kernel's shift loops copy one struct per iteration (`mslots[i] =
   * mslots[i + 1]`); a run of such adjacent copies moves exactly these bytes.
   */
  moveRecords(dst: number, src: number, count: number): void {
    // Stryker disable next-line ConditionalExpression,EqualityOperator: copyWithin() copies nothing for a count of 0 or less
    if (count > 0) this.u32.copyWithin(dst * W32, src * W32, (src + count) * W32);
  }
}
