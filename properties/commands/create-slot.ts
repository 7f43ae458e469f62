/** [MS-CRT-02] Create a slot at a fresh id: any gfn, size, flags and userspace_addr (so every VAL rule can decide). */
import fc from 'fast-check';
import { flagsText } from '../ops.js';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { asIdArb, flagsArb, gfnArb, npagesArb, uaddrArb, type ArbConfig } from '../arbitraries.js';
import { MemslotCommand, freeId, hex, region, slotNr } from './common.js';

export class CreateSlot extends MemslotCommand {
  constructor(
    readonly asId: number,
    readonly idHint: number,
    readonly gfn: bigint,
    readonly npages: bigint,
    readonly flags: number,
    readonly uaddr: bigint,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const id = freeId(m, this.asId, this.idHint);
    return { kind: 'set', region: region(slotNr(this.asId, id), this.flags, this.gfn, this.npages, this.uaddr) };
  }

  toString(): string {
    return `create(KVM_SET_USER_MEMORY_REGION(slot=<as ${this.asId}, first free id from ${this.idHint}>, flags=${flagsText(this.flags)}, gfn=${hex(this.gfn)}, npages=${this.npages}, userspace_addr=${hex(this.uaddr)}))`;
  }
}

export function createSlotArb(c: ArbConfig): fc.Arbitrary<CreateSlot> {
  return fc
    .tuple(asIdArb(c.profile), fc.nat({ max: 31 }), gfnArb(c.profile), npagesArb(c.profile), flagsArb(), uaddrArb(c.profile))
    .map(([as, id, gfn, n, f, u]) => new CreateSlot(as, id, gfn, n, f, u));
}
