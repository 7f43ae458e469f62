/** [MS-MOD-03] Toggle KVM_MEM_READONLY on a live slot (alone, or together with a move): EINVAL. */
import fc from 'fast-check';
import type { ModelBox } from '../harness.js';
import type { Op } from '../ops.js';
import { pickArb, type ArbConfig } from '../arbitraries.js';
import { TargetCommand, regionOf } from './common.js';
import { KVM_MEM_READONLY, PAGE_SIZE } from '../../model/index.js';

export class ToggleReadonly extends TargetCommand {
  constructor(
    readonly pick: number,
    readonly alsoMove: boolean,
  ) {
    super();
  }

  resolve(m: Readonly<ModelBox>): Op {
    const r = regionOf(this.target(m));
    return { kind: 'set', region: { ...r, flags: r.flags ^ KVM_MEM_READONLY, guestPhysAddr: r.guestPhysAddr + (this.alsoMove ? PAGE_SIZE : 0n) } };
  }

  toString(): string {
    return `toggle_readonly(slot[${this.pick}]${this.alsoMove ? ', and move by 1 page' : ''})`;
  }
}

export function toggleReadonlyArb(_c: ArbConfig): fc.Arbitrary<ToggleReadonly> {
  return fc.tuple(pickArb, fc.boolean()).map(([p, mv]) => new ToggleReadonly(p, mv));
}
