/**
 * [MS-GMF-01] [MS-GMF-02] [MS-GMF-03] [MS-GMF-04] KVM_CREATE_GUEST_MEMFD: sizes (page multiples,
 * 0, unaligned, 2^63 and above) and flags (none, MMAP, INIT_SHARED, both, unknown bits).
 */
import fc from 'fast-check';
import { GUEST_MEMFD_FLAG_INIT_SHARED, GUEST_MEMFD_FLAG_MMAP, PAGE_SIZE, U64_MAX } from '../../model/index.js';
import type { Op } from '../ops.js';
import type { ArbConfig } from '../arbitraries.js';
import { MemslotCommand, hex } from './common.js';

export class CreateGuestMemfd extends MemslotCommand {
  constructor(
    readonly size: bigint,
    readonly flags: bigint,
  ) {
    super();
  }

  resolve(): Op {
    return { kind: 'createGmem', size: this.size, flags: this.flags };
  }

  toString(): string {
    return `create_guest_memfd(size=${hex(this.size)}, flags=${hex(this.flags)})`;
  }
}

/** A guest_memfd size: mostly 1 to 64 pages, sometimes an edge of MS-GMF-03. */
export function gmemSizeArb(): fc.Arbitrary<bigint> {
  return fc.oneof(
    { arbitrary: fc.bigInt(1n, 64n).map((n) => n * PAGE_SIZE), weight: 10 },
    { arbitrary: fc.constantFrom(0n, 1n, PAGE_SIZE - 1n, PAGE_SIZE + 1n, (1n << 63n) - PAGE_SIZE, 1n << 63n, U64_MAX - PAGE_SIZE + 1n, U64_MAX), weight: 2 },
  );
}

/** GUEST_MEMFD_FLAG_*: mostly the defined ones, sometimes one other bit of the 64, sometimes anything. */
export function gmemFlagsArb(): fc.Arbitrary<bigint> {
  const M = GUEST_MEMFD_FLAG_MMAP;
  const S = GUEST_MEMFD_FLAG_INIT_SHARED;
  return fc.oneof(
    { arbitrary: fc.constantFrom(0n, 0n, M, S, M | S), weight: 8 },
    { arbitrary: fc.integer({ min: 2, max: 63 }).map((b) => 1n << BigInt(b)), weight: 1 },
    { arbitrary: fc.bigInt(0n, U64_MAX), weight: 1 },
  );
}

export function createGuestMemfdArb(_c: ArbConfig): fc.Arbitrary<CreateGuestMemfd> {
  return fc.tuple(gmemSizeArb(), gmemFlagsArb()).map(([s, f]) => new CreateGuestMemfd(s, f));
}
