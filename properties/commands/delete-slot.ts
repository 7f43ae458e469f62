/**
 * [MS-DEL-02] Delete a live slot (memory_size 0). The request's flags, guest_phys_addr and
 * userspace_addr need not match the slot: `junk` sends other (valid, aligned) values.
 */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { pickArb, type ArbConfig } from '../arbitraries.js';
import { TargetCommand, regionOf } from './common.js';

export class DeleteSlot extends TargetCommand {
  constructor(
    readonly pick: number,
    readonly junk: boolean,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const r = regionOf(this.target(m));
    if (!this.junk) return { kind: 'set', region: { ...r, memorySize: 0n } };
    return { kind: 'set', region: { ...r, memorySize: 0n, flags: r.flags ^ 1, guestPhysAddr: 0x1000n, userspaceAddr: 0n } };
  }

  toString(): string {
    return `delete(slot[${this.pick}]${this.junk ? ', other flags/gpa/uaddr' : ''})`;
  }
}

export function deleteSlotArb(_c: ArbConfig): fc.Arbitrary<DeleteSlot> {
  return fc.tuple(pickArb, fc.boolean()).map(([p, j]) => new DeleteSlot(p, j));
}
