/**
 * [MS-VAL-02] [MS-VAL-08] Slot ids at the bounds: the last user id (valid), the internal ids
 * KVM_USER_MEM_SLOTS + 0..2 and KVM_MEM_SLOTS_NUM through the user ioctl, 0xffff, the same
 * with every as_id bit set (slot 0xffff7ffc on mainline), a valid id in the first address space
 * past the profile's, and a valid id in address space 1.
 */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { gfnArb, type ArbConfig, UADDR_BASE } from '../arbitraries.js';
import { MemslotCommand, hex, region } from './common.js';

export type IdBound = 'last-user' | 'first-internal' | 'internal+1' | 'internal+2' | 'mem-slots-num' | 'u16-max' | 'high-as-bits' | 'as-past' | 'as-1';
export const ID_BOUNDS: readonly IdBound[] = [
  'last-user',
  'first-internal',
  'internal+1',
  'internal+2',
  'mem-slots-num',
  'u16-max',
  'high-as-bits',
  'as-past',
  'as-1',
];

export class SlotIdBound extends MemslotCommand {
  constructor(
    readonly bound: IdBound,
    readonly gfn: bigint,
    readonly asDelete: boolean,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const p = m.profile;
    const slot = {
      'last-user': p.userMemSlots - 1,
      'first-internal': p.userMemSlots,
      'internal+1': p.userMemSlots + 1,
      'internal+2': p.userMemSlots + 2,
      'mem-slots-num': p.memSlotsNum,
      'u16-max': 0xffff,
      'high-as-bits': (0xffff_0000 | p.userMemSlots) >>> 0,
      'as-past': (p.addressSpaces << 16) | 1,
      'as-1': (1 << 16) | 1,
    }[this.bound];
    return { kind: 'set', region: region(slot >>> 0, 0, this.gfn, this.asDelete ? 0n : 1n, UADDR_BASE) };
  }

  toString(): string {
    return `slot_id_bound(${this.bound}, gfn=${hex(this.gfn)}${this.asDelete ? ', as a delete' : ''})`;
  }
}

export function slotIdBoundArb(c: ArbConfig): fc.Arbitrary<SlotIdBound> {
  return fc.tuple(fc.constantFrom(...ID_BOUNDS), gfnArb(c.profile), fc.boolean()).map(([b, g, d]) => new SlotIdBound(b, g, d));
}
