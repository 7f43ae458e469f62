/** [MS-DEL-01] Delete a slot id that has no slot: EINVAL, not a no-op. */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { asIdArb, type ArbConfig } from '../arbitraries.js';
import { MemslotCommand, freeId, slotNr } from './common.js';

export class DeleteMissing extends MemslotCommand {
  constructor(
    readonly asId: number,
    readonly idHint: number,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const id = freeId(m, this.asId, this.idHint);
    return { kind: 'set', region: { slot: slotNr(this.asId, id), flags: 0, guestPhysAddr: 0n, memorySize: 0n, userspaceAddr: 0n } };
  }

  toString(): string {
    return `delete_missing(KVM_SET_USER_MEMORY_REGION(slot=<as ${this.asId}, first free id from ${this.idHint}>, memory_size=0))`;
  }
}

export function deleteMissingArb(c: ArbConfig): fc.Arbitrary<DeleteMissing> {
  return fc.tuple(asIdArb(c.profile), fc.nat({ max: 31 })).map(([a, i]) => new DeleteMissing(a, i));
}
