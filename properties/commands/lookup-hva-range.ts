/**
 * [MS-LKP-05] kvm_handle_hva_range(): every slot of every address space whose hva range
 * intersects [start, end), with the gfns it covers. Ranges start in, before or after a live
 * slot's hva range, sometimes off a page boundary; hva ranges of slots alias often.
 */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { pickArb, uaddrArb, type ArbConfig } from '../arbitraries.js';
import { MemslotCommand, hex, allSlots } from './common.js';
import { PAGE_SIZE, PAGE_SHIFT, U64_MAX } from '../../model/index.js';

export class LookupHvaRange extends MemslotCommand {
  constructor(
    readonly pick: number | null,
    readonly startOffset: bigint,
    readonly length: bigint,
    readonly start: bigint,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const all = allSlots(m);
    let start = this.start;
    if (this.pick !== null && all.length > 0) {
      const s = all[this.pick % all.length]!;
      start = s.userspaceAddr + this.startOffset;
      if (this.startOffset === -1n) start = s.userspaceAddr + (s.npages << PAGE_SHIFT) - 1n;
    }
    if (start < 0n) start = 0n;
    const end = start + this.length > U64_MAX ? U64_MAX : start + this.length;
    return { kind: 'hvaRange', start, end };
  }

  toString(): string {
    const abs = hex(this.start);
    const where = this.pick === null ? abs : `${this.startOffset === -1n ? 'last byte' : `uaddr + ${hex(this.startOffset)}`} of slot[${this.pick}] (or ${abs})`;
    return `kvm_handle_hva_range(start=${where}, length ${hex(this.length)})`;
  }
}

export function lookupHvaRangeArb(c: ArbConfig): fc.Arbitrary<LookupHvaRange> {
  const offset = fc.constantFrom(-PAGE_SIZE, 0n, 1n, PAGE_SIZE / 2n, PAGE_SIZE, -1n);
  const length = fc.oneof(
    { arbitrary: fc.constantFrom(0n, 1n, PAGE_SIZE, 2n * PAGE_SIZE + 1n, 8n * PAGE_SIZE), weight: 4 },
    { arbitrary: fc.constantFrom(1n << 40n, U64_MAX), weight: 1 },
  );
  return fc
    .tuple(fc.oneof({ arbitrary: pickArb, weight: 3 }, { arbitrary: fc.constant(null), weight: 1 }), offset, length, uaddrArb(c.profile))
    .map(([p, o, l, s]) => new LookupHvaRange(p, o, l, s));
}
