/**
 * [MS-VAL-11] KVM_MEM_MAX_NR_PAGES: a slot of exactly 2^31 - 1 pages (accepted) or 2^31
 * pages (EINVAL), through the user ioctl. No internal request is generated at this size: the
 * kernel's internal caller takes a u32 size (fewer than 2^20 pages), so no kernel can be
 * asked it, and max_nr_pages_user_only is not observable by any request.
 */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import type { ArbConfig } from '../arbitraries.js';
import { MemslotCommand, freeId, hex, region, slotNr } from './common.js';

export class MaxPages extends MemslotCommand {
  constructor(
    readonly over: boolean,
    readonly gfn: bigint,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const npages = m.profile.maxNrPages + (this.over ? 1n : 0n);
    return { kind: 'set', region: region(slotNr(0, freeId(m, 0, 0)), 0, this.gfn, npages, 0x1000n) };
  }

  toString(): string {
    return `max_pages(${this.over ? 'KVM_MEM_MAX_NR_PAGES + 1' : 'KVM_MEM_MAX_NR_PAGES'} pages, gfn=${hex(this.gfn)})`;
  }
}

export function maxPagesArb(_c: ArbConfig): fc.Arbitrary<MaxPages> {
  return fc.tuple(fc.boolean(), fc.constantFrom(1n << 32n, 1n << 36n, 1n << 38n)).map(([o, g]) => new MaxPages(o, g));
}
