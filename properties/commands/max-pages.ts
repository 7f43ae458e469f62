/**
 * [MS-VAL-11] KVM_MEM_MAX_NR_PAGES: a slot of exactly 2^31 - 1 pages (accepted) or 2^31
 * pages (EINVAL), through the user ioctl; and an internal slot of 2^31 pages, which only
 * kernels that apply the limit to every id (5.10) refuse.
 */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import type { ArbConfig } from '../arbitraries.js';
import { MemslotCommand, freeId, hex, region, slotNr } from './common.js';
import { PAGE_SHIFT } from '../../model/index.js';

export class MaxPages extends MemslotCommand {
  constructor(
    readonly over: boolean,
    readonly internal: boolean,
    readonly gfn: bigint,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const npages = m.profile.maxNrPages + (this.over ? 1n : 0n);
    if (this.internal) return { kind: 'internal', id: m.profile.userMemSlots + 2, gpa: this.gfn << PAGE_SHIFT, size: npages << PAGE_SHIFT, hva: 0x1000n };
    return { kind: 'set', region: region(slotNr(0, freeId(m, 0, 0)), 0, this.gfn, npages, 0x1000n) };
  }

  toString(): string {
    return `max_pages(${this.over ? 'KVM_MEM_MAX_NR_PAGES + 1' : 'KVM_MEM_MAX_NR_PAGES'} pages, ${this.internal ? 'internal slot' : 'user slot'}, gfn=${hex(this.gfn)})`;
  }
}

export function maxPagesArb(_c: ArbConfig): fc.Arbitrary<MaxPages> {
  return fc
    .tuple(fc.boolean(), fc.oneof({ arbitrary: fc.constant(false), weight: 3 }, { arbitrary: fc.constant(true), weight: 1 }), fc.constantFrom(1n << 32n, 1n << 36n, 1n << 38n))
    .map(([o, i, g]) => new MaxPages(o, i, g));
}
