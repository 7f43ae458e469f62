/** [MS-VAL-04] [MS-VAL-05] [MS-VAL-06] memory_size, guest_phys_addr or userspace_addr off a page boundary, on a create, a live slot or a delete. */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { gfnArb, pickArb, type ArbConfig, UADDR_BASE } from '../arbitraries.js';
import { MemslotCommand, freeId, hex, region, regionOf, slotNr, userSlots } from './common.js';
import type { MemoryRegion } from '../../model/index.js';

export type AlignField = 'memory_size' | 'guest_phys_addr' | 'userspace_addr';

export class Misaligned extends MemslotCommand {
  constructor(
    readonly field: AlignField,
    readonly offset: bigint,
    readonly pick: number | null,
    readonly asDelete: boolean,
    readonly gfn: bigint,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const live = userSlots(m);
    let r: MemoryRegion =
      this.pick !== null && live.length > 0 ? regionOf(live[this.pick % live.length]!) : region(slotNr(0, freeId(m, 0, 0)), 0, this.gfn, 2n, UADDR_BASE);
    if (this.asDelete) r = { ...r, memorySize: 0n };
    const o = this.offset;
    const bad =
      this.field === 'memory_size'
        ? { ...r, memorySize: r.memorySize + o }
        : this.field === 'guest_phys_addr'
          ? { ...r, guestPhysAddr: r.guestPhysAddr + o }
          : { ...r, userspaceAddr: r.userspaceAddr + o };
    return { kind: 'set', region: bad };
  }

  toString(): string {
    const on = this.pick === null ? `fresh slot at gfn ${hex(this.gfn)}` : `slot[${this.pick}]`;
    return `misaligned(${this.field} + ${hex(this.offset)}, ${on}${this.asDelete ? ', as a delete' : ''})`;
  }
}

export function misalignedArb(c: ArbConfig): fc.Arbitrary<Misaligned> {
  return fc
    .tuple(
      fc.constantFrom<AlignField>('memory_size', 'guest_phys_addr', 'userspace_addr'),
      fc.oneof(fc.constantFrom(1n, 0x800n, 0xfffn), fc.bigInt(1n, 0xfffn)),
      fc.option(pickArb, { nil: null }),
      fc.boolean(),
      gfnArb(c.profile),
    )
    .map(([f, o, p, d, g]) => new Misaligned(f, o, p, d, g));
}
