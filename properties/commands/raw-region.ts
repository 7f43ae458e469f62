/** Any KVM_SET_USER_MEMORY_REGION, every field drawn from its edges: whichever rule decides, the implementation must agree. */
import fc from 'fast-check';
import type { MemoryRegion } from '../../model/index.js';
import type { Op } from '../ops.js';
import { regionCall } from '../ops.js';
import { flagsArb, requestAsIdArb, slotIdArb, u64EdgeArb, uaddrArb, type ArbConfig } from '../arbitraries.js';
import { MemslotCommand, slotNr } from './common.js';

export class RawRegion extends MemslotCommand {
  constructor(readonly region: MemoryRegion) {
    super();
  }

  resolve(): Op {
    return { kind: 'set', region: this.region };
  }

  toString(): string {
    return regionCall(this.region);
  }
}

export function rawRegionArb(c: ArbConfig): fc.Arbitrary<RawRegion> {
  return fc
    .tuple(requestAsIdArb(c.profile), slotIdArb(c.profile), flagsArb(), u64EdgeArb(), u64EdgeArb(), uaddrArb(c.profile))
    .map(([as, id, flags, gpa, size, uaddr]) => new RawRegion({ slot: slotNr(as, id), flags, guestPhysAddr: gpa, memorySize: size, userspaceAddr: uaddr }));
}
