/**
 * [MS-DEL-02] [MS-GMB-06] [MS-GMS-04] Delete a live slot with KVM_SET_USER_MEMORY_REGION2, a slot
 * bound to a guest_memfd first when there is one (the delete unbinds its range): the request's
 * flags as the slot's or without KVM_MEM_GUEST_MEMFD, and its guest_memfd_offset the slot's,
 * unaligned (MS-GMS-04 applies to a delete that carries the flag) or near 2^64.
 */
import fc from 'fast-check';
import { KVM_MEM_GUEST_MEMFD, PAGE_SHIFT, PAGE_SIZE, U64_MAX, type MemoryRegion2 } from '../../model/index.js';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { pickArb, type ArbConfig } from '../arbitraries.js';
import { TargetCommand, gmemSlots, regionOf, userSlots } from './common.js';

export class DeleteSlot2 extends TargetCommand {
  constructor(
    readonly pick: number,
    readonly dropFlag: boolean,
    readonly offset: 'slot' | 'misaligned' | 'wrap',
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const bound = gmemSlots(m);
    const live = bound.length > 0 ? bound : userSlots(m);
    const t = live[this.pick % live.length]!;
    const r = regionOf(t);
    const offset = this.offset === 'misaligned' ? PAGE_SIZE / 2n : this.offset === 'wrap' ? U64_MAX - PAGE_SIZE + 1n : (t.gmem?.pgoff ?? 0n) << PAGE_SHIFT;
    const region: MemoryRegion2 = {
      ...r,
      memorySize: 0n,
      flags: this.dropFlag ? (r.flags & ~KVM_MEM_GUEST_MEMFD) >>> 0 : r.flags,
      guestMemfd: t.gmem?.file ?? 'closed',
      guestMemfdOffset: offset,
    };
    return { kind: 'set2', region };
  }

  toString(): string {
    return `delete2(bound slot[${this.pick}] (or any slot)${this.dropFlag ? ', flags without GUEST_MEMFD' : ''}, offset ${this.offset})`;
  }
}

export function deleteSlot2Arb(_c: ArbConfig): fc.Arbitrary<DeleteSlot2> {
  const offset = fc.oneof(
    { arbitrary: fc.constant('slot' as const), weight: 6 },
    { arbitrary: fc.constantFrom('misaligned' as const, 'wrap' as const), weight: 1 },
  );
  return fc.tuple(pickArb, fc.boolean(), offset).map(([p, d, o]) => new DeleteSlot2(p, d, o));
}
